// Behaviour of the built-in layers beyond their gradients: accumulation, shapes,
// reference values, dropout statistics and reproducibility, embedding validation.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <xtensor/xio.hpp>
#include <xtensor/xmath.hpp>

#include "framework/registry.hpp"
#include "layers/dropout.hpp"
#include "layers/embedding.hpp"
#include "layers/gelu.hpp"
#include "layers/layer_norm.hpp"
#include "layers/linear.hpp"
#include "layers/relu.hpp"

using namespace strata;

namespace {

template <class S>
Tensor<double> random_tensor(const S& shape, std::uint64_t seed) {
  Rng rng(seed);
  Tensor<double> x;
  ensure_shape(x, shape);
  for (auto& v : x) v = rng.normal(0, 1);
  return x;
}

Shape shape_of(const Tensor<double>& t) { return Shape(t.shape().begin(), t.shape().end()); }

// One layer with an input it accepts and the mode to run it in.
struct Case {
  std::unique_ptr<Layer<double>> layer;
  Tensor<double> input;
  Mode mode = Mode::eval;
};

// Small integers: products and sums of a few of them are exact in double, in any order.
template <class S>
Tensor<double> integer_tensor(const S& shape, std::uint64_t seed) {
  Rng rng(seed);
  Tensor<double> x;
  ensure_shape(x, shape);
  for (auto& v : x) v = double(rng.below(7)) - 3.0;
  return x;
}

// Every layer with an input it accepts and the mode to run it in. Inputs are chosen so
// that parameter gradients are exact sums (integers, and LayerNorm rows whose xhat is
// dyadic): then "backward twice gives twice the gradient" can be checked with ==,
// which a floating-point re-association would otherwise spoil by an ulp.
std::vector<Case> every_layer(Rng& rng) {
  std::vector<Case> cases;
  cases.push_back({std::make_unique<Linear<double>>("fc", 5, 4, true, Init::he, rng),
                   integer_tensor(std::vector<std::size_t>{2, 3, 5}, 1)});
  // Rows are shifted permutations of (1, 2, 3, 6): mean 3 + shift, biased variance 3.5,
  // so with eps 0.5 the inverse std is exactly 1/2 and xhat is in {-1, -0.5, 0, 1.5}.
  auto ln = std::make_unique<LayerNorm<double>>("ln", 4, 0.5);
  for (auto& v : ln->gamma().value) v = rng.normal(1, 0.5);
  Tensor<double> ln_input = Tensor<double>::from_shape({2, 3, 4});
  for (std::size_t r = 0; r < 6; ++r) {
    double row[] = {1, 2, 3, 6};
    rng.shuffle(row, row + 4);
    for (std::size_t i = 0; i < 4; ++i) ln_input.data()[r * 4 + i] = row[i] + double(r) - 2.0;
  }
  cases.push_back({std::move(ln), ln_input});
  cases.push_back({std::make_unique<ReLU<double>>("relu"),
                   random_tensor(std::vector<std::size_t>{2, 3, 5}, 3)});
  cases.push_back({std::make_unique<GELU<double>>("gelu"),
                   random_tensor(std::vector<std::size_t>{2, 3, 5}, 4)});
  // Ids repeat (1 and 4), so the token gradient sums several rows.
  cases.push_back({std::make_unique<Embedding<double>>("emb", 6, 5, 8, 0.02, rng),
                   Tensor<double>{{1.0, 4.0, 1.0}, {0.0, 5.0, 4.0}}});
  cases.push_back({std::make_unique<Dropout<double>>("drop", 0.4, rng),
                   random_tensor(std::vector<std::size_t>{2, 3, 5}, 5), Mode::train});
  return cases;
}

template <class E>
bool message_contains(const E& e, const std::string& part) {
  return std::string(e.what()).find(part) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(layers)

BOOST_AUTO_TEST_CASE(backward_twice_accumulates_exactly_twice) {
  Rng rng(11);
  for (Case& c : every_layer(rng)) {
    BOOST_TEST_CONTEXT(c.layer->type()) {
      const Tensor<double> y = c.layer->forward(c.input, c.mode);
      const Tensor<double> dy = integer_tensor(y.shape(), 21);
      const auto params = c.layer->parameters();
      for (auto* p : params) std::fill(p->grad.begin(), p->grad.end(), 0.0);

      const Tensor<double> dx1 = c.layer->backward(dy);
      std::vector<Tensor<double>> once;
      for (auto* p : params) once.push_back(p->grad);
      const Tensor<double> dx2 = c.layer->backward(dy);

      // dx is returned, not accumulated: the same both times.
      BOOST_TEST((dx1.shape() == c.input.shape()));
      BOOST_TEST(dx2 == dx1);
      for (std::size_t k = 0; k < params.size(); ++k) {
        BOOST_TEST_CONTEXT(params[k]->name) {
          BOOST_TEST(xt::any(xt::not_equal(once[k], 0.0)));  // not vacuously 2 * 0
          const Tensor<double>& twice = params[k]->grad;
          BOOST_REQUIRE(twice.size() == once[k].size());
          for (std::size_t i = 0; i < twice.size(); ++i)
            BOOST_TEST(twice.data()[i] == 2.0 * once[k].data()[i]);
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(output_shapes_match_output_shape) {
  Rng rng(12);
  for (Case& c : every_layer(rng)) {
    BOOST_TEST_CONTEXT(c.layer->type()) {
      const Tensor<double>& y = c.layer->forward(c.input, c.mode);
      const Shape in = shape_of(c.input);
      BOOST_TEST(c.layer->output_shape(in) == shape_of(y), boost::test_tools::per_element());
      // With run-time sizes unknown, the known axes still come out right.
      Shape symbolic = in;
      symbolic[0] = kAnyDim;
      if (symbolic.size() > 1) symbolic[1] = kAnyDim;
      Shape expected = shape_of(y);
      expected[0] = kAnyDim;
      if (expected.size() > 1) expected[1] = kAnyDim;
      BOOST_TEST(c.layer->output_shape(symbolic) == expected, boost::test_tools::per_element());
    }
  }
}

BOOST_AUTO_TEST_CASE(elementwise_layers_keep_any_rank) {
  Rng rng(13);
  ReLU<double> relu("relu");
  GELU<double> gelu("gelu");
  Dropout<double> drop("drop", 0.5, rng);
  for (Layer<double>* layer : std::vector<Layer<double>*>{&relu, &gelu, &drop})
    for (const auto& shape : std::vector<std::vector<std::size_t>>{{7}, {2, 3}, {2, 1, 3, 2}}) {
      const Tensor<double> x = random_tensor(shape, 3);
      const Tensor<double>& y = layer->forward(x, Mode::train);
      BOOST_TEST((y.shape() == x.shape()));
      BOOST_TEST(layer->output_shape(shape_of(x)) == shape_of(x), boost::test_tools::per_element());
      BOOST_TEST((layer->backward(x).shape() == x.shape()));
    }
}

BOOST_AUTO_TEST_CASE(output_shape_rejects_misfits) {
  Rng rng(14);
  BOOST_CHECK_THROW(LayerNorm<double>("ln", 4, 1e-5).output_shape({kAnyDim, 5}), ShapeError);
  BOOST_CHECK_THROW(LayerNorm<double>("ln", 4, 1e-5).output_shape({}), ShapeError);
  Embedding<double> emb("emb", 10, 4, 8, 0.02, rng);
  BOOST_CHECK_THROW(emb.output_shape({kAnyDim, kAnyDim, 4}), ShapeError);
  BOOST_CHECK_THROW(emb.output_shape({kAnyDim}), ShapeError);
  BOOST_CHECK_THROW(emb.output_shape({kAnyDim, 9}), ShapeError);
}

BOOST_AUTO_TEST_CASE(layer_norm_matches_hand_computed_values) {
  // Row 1: x = (1, 2, 3, 6): mu = 3, biased var = (4 + 1 + 0 + 9) / 4 = 3.5; with eps 0.5,
  // 1/sqrt(var + eps) = 1/2, so xhat = (-1, -0.5, 0, 1.5).
  // Row 2: a constant row: xhat = 0, y = beta (eps keeps it finite).
  LayerNorm<double> ln("ln", 4, 0.5);
  ln.gamma().value = Tensor<double>{1.0, 2.0, 3.0, 4.0};
  ln.beta().value = Tensor<double>{0.5, 0.0, -1.0, 1.0};
  const Tensor<double> x = {{1.0, 2.0, 3.0, 6.0}, {7.0, 7.0, 7.0, 7.0}};
  const Tensor<double>& y = ln.forward(x, Mode::eval);
  const Tensor<double> expected = {{-0.5, -1.0, -1.0, 7.0}, {0.5, 0.0, -1.0, 1.0}};
  BOOST_REQUIRE(y.shape() == expected.shape());
  for (std::size_t i = 0; i < y.size(); ++i)
    BOOST_TEST(y.data()[i] == expected.data()[i], boost::test_tools::tolerance(1e-12));

  // Default eps and parameters: torch.nn.LayerNorm(4)([1, 2, 3, 4]) =
  // (x - 2.5) / sqrt(1.25 + 1e-5) = (-1.3416355, -0.4472118, 0.4472118, 1.3416355).
  LayerNorm<float> lnf("lnf", 4, 1e-5);
  const Tensor<float> xf = {{1.0f, 2.0f, 3.0f, 4.0f}};
  const Tensor<float>& yf = lnf.forward(xf, Mode::eval);
  const double ref[] = {-1.3416355, -0.4472118, 0.4472118, 1.3416355};
  // Float error relative to the row's largest |y|: the mean and the variance are sums of
  // n = 4 terms (n u each), then + eps, the root, its inverse, * gamma and + beta (one u
  // each, u = 2^-24): (2 n + 8) u max |y|; the reference is rounded to 7 decimals (5e-8).
  const double bound = (2 * 4 + 8) * (std::numeric_limits<float>::epsilon() / 2) * 1.3416355 + 5e-8;
  for (std::size_t i = 0; i < 4; ++i)
    BOOST_TEST(std::abs(double(yf.data()[i]) - ref[i]) <= bound, "element " << i);
}

BOOST_AUTO_TEST_CASE(relu_and_gelu_reference_values) {
  const Tensor<double> x = {-3.0, -0.5, 0.0, 1.0, 2.5};
  ReLU<double> relu("relu");
  const Tensor<double> relu_expected = {0.0, 0.0, 0.0, 1.0, 2.5};
  BOOST_TEST(relu.forward(x, Mode::eval) == relu_expected);
  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), computed independently in Python;
  // 0.8411920 at x = 1 is torch's gelu(1, approximate="tanh").
  const double gelu_expected[] = {-0.0036373920817729943, -0.15428599017485606, 0.0,
                                  0.8411919906082768, 2.484915733910001};
  GELU<double> gelu("gelu");
  const Tensor<double>& y = gelu.forward(x, Mode::eval);
  // Absolute, scaled by |x|: 1 + tanh cancels for negative x (at x = -3 the result is
  // 400 times smaller than its terms), so no bound relative to the result holds. Every
  // term is at most |x| (|1 + tanh| <= 2); tanh is within an ulp and has slope <= 1, and
  // each of the few products rounds once (u = 2^-53): 8 u max(|x|, 1) covers them.
  const double u = std::numeric_limits<double>::epsilon() / 2;
  for (std::size_t i = 0; i < 5; ++i)
    BOOST_TEST(
        std::abs(y.data()[i] - gelu_expected[i]) <= 8 * u * std::max(std::abs(x.data()[i]), 1.0),
        "x = " << x.data()[i]);
}

BOOST_AUTO_TEST_CASE(dropout_eval_is_identity) {
  Rng rng(15);
  Dropout<double> drop("drop", 0.5, rng);
  const Tensor<double> x = random_tensor(std::vector<std::size_t>{4, 8}, 6);
  BOOST_TEST(drop.forward(x, Mode::eval) == x);
  const Tensor<double> dy = random_tensor(std::vector<std::size_t>{4, 8}, 7);
  BOOST_TEST(drop.backward(dy) == dy);
}

BOOST_AUTO_TEST_CASE(dropout_train_statistics) {
  Rng rng(16);
  const double rate = 0.3;
  Dropout<double> drop("drop", rate, rng);
  const Tensor<double> x = random_tensor(std::vector<std::size_t>{100, 100}, 8);
  const Tensor<double>& y = drop.forward(x, Mode::train);
  std::size_t zeros = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (y.data()[i] == 0.0) {
      ++zeros;
    } else {
      BOOST_TEST(y.data()[i] == x.data()[i] / (1 - rate), boost::test_tools::tolerance(1e-14));
    }
  }
  // Binomial(10000, 0.3): std 0.0046, so +- 0.02 is over 4 sigma.
  const double fraction = double(zeros) / double(x.size());
  BOOST_TEST(fraction > rate - 0.02);
  BOOST_TEST(fraction < rate + 0.02);
  // Backward applies the same mask.
  const Tensor<double> ones = xt::ones<double>({100, 100});
  const Tensor<double>& dx = drop.backward(ones);
  for (std::size_t i = 0; i < x.size(); ++i)
    BOOST_TEST((dx.data()[i] == 0.0) == (y.data()[i] == 0.0));
}

BOOST_AUTO_TEST_CASE(dropout_masks_are_reproducible) {
  const Tensor<double> x = xt::ones<double>({16, 16});
  // Same run seed -> same masks, step after step.
  Rng rng_a(17), rng_b(17);
  Dropout<double> a("a", 0.5, rng_a), b("b", 0.5, rng_b);
  for (int step = 0; step < 3; ++step) {
    const Tensor<double> ya = a.forward(x, Mode::train);
    BOOST_TEST(ya == b.forward(x, Mode::train));
  }
  // Different run seeds -> different masks.
  Rng rng_c(18);
  Dropout<double> c("c", 0.5, rng_c);
  a.reseed(1);
  c.reseed(2);
  const Tensor<double> ya = a.forward(x, Mode::train);
  BOOST_TEST(xt::any(xt::not_equal(ya, c.forward(x, Mode::train))));
  // reseed() replays a mask; successive forwards without it draw fresh ones.
  a.reseed(5);
  const Tensor<double> first = a.forward(x, Mode::train);
  const Tensor<double> second = a.forward(x, Mode::train);
  BOOST_TEST(xt::any(xt::not_equal(first, second)));
  a.reseed(5);
  BOOST_TEST(a.forward(x, Mode::train) == first);
  // Eval draws nothing: the next training mask is unaffected by an eval pass.
  a.reseed(6);
  const Tensor<double> expected = a.forward(x, Mode::train);
  a.reseed(6);
  a.forward(x, Mode::eval);
  BOOST_TEST(a.forward(x, Mode::train) == expected);
}

BOOST_AUTO_TEST_CASE(dropout_takes_one_draw_from_the_run_rng) {
  Rng shared(19), reference(19);
  Dropout<double> drop("drop", 0.1, shared);
  reference.below(std::numeric_limits<std::uint64_t>::max());
  BOOST_TEST(shared.uniform() == reference.uniform());
  // Training does not consume the shared stream.
  drop.forward(xt::ones<double>({50}), Mode::train);
  BOOST_TEST(shared.uniform() == reference.uniform());
}

BOOST_AUTO_TEST_CASE(embedding_forward_values) {
  Rng rng(20);
  Embedding<double> emb("emb", 6, 3, 5, 0.02, rng);
  const Tensor<double> ids = {{2.0, 5.0, 2.0}, {0.0, 1.0, 4.0}};
  const Tensor<double> y = emb.forward(ids, Mode::eval);
  BOOST_REQUIRE(y.shape() == (std::vector<std::size_t>{2, 3, 3}));
  const auto& tok = emb.token().value;
  const auto& pos = emb.position().value;
  for (std::size_t b = 0; b < 2; ++b)
    for (std::size_t s = 0; s < 3; ++s)
      for (std::size_t d = 0; d < 3; ++d)
        BOOST_TEST(y(b, s, d) == tok(std::size_t(ids(b, s)), d) + pos(s, d));
  // Incremental decoding: the same tokens at positions 2..4 use position rows 2..4.
  const Tensor<double> last = {{5.0, 2.0}, {1.0, 4.0}};
  const Tensor<double>& yc = emb.forward_step(last, 2);
  for (std::size_t b = 0; b < 2; ++b)
    for (std::size_t s = 0; s < 2; ++s)
      for (std::size_t d = 0; d < 3; ++d)
        BOOST_TEST(yc(b, s, d) == tok(std::size_t(last(b, s)), d) + pos(2 + s, d));
  BOOST_CHECK_THROW(emb.forward_step(last, 4), Error);  // positions 4..5 of 5
}

BOOST_AUTO_TEST_CASE(embedding_rejects_bad_ids) {
  Rng rng(21);
  Embedding<double> emb("emb", 10, 4, 8, 0.02, rng);
  const auto names = [](const std::string& part) {
    return [part](const Error& e) { return message_contains(e, part); };
  };
  BOOST_CHECK_EXCEPTION(emb.forward(Tensor<double>{{1.0, 37.0}}, Mode::eval), Error,
                        names("token id 37 at (0, 1) is outside the vocabulary [0, 10)"));
  BOOST_CHECK_EXCEPTION(emb.forward(Tensor<double>{{0.0, 10.0}}, Mode::eval), Error,
                        names("token id 10"));
  BOOST_CHECK_EXCEPTION(emb.forward(Tensor<double>{{0.0, -1.0}}, Mode::eval), Error,
                        names("token id -1"));
  BOOST_CHECK_EXCEPTION(emb.forward(Tensor<double>{{0.0, 2.5}}, Mode::eval), Error,
                        names("token id 2.5 at (0, 1) is not an integer"));
  BOOST_CHECK_THROW(emb.forward(Tensor<double>{{0.0, std::nan("")}}, Mode::eval), Error);
  BOOST_CHECK_THROW(emb.forward(Tensor<double>{{0.0, HUGE_VAL}}, Mode::eval), Error);
  BOOST_CHECK_EXCEPTION(emb.forward(xt::zeros<double>({1, 9}), Mode::eval), Error,
                        names("max_seq_len 8"));
  BOOST_CHECK_THROW(emb.forward(xt::zeros<double>({1, 2, 3}), Mode::eval), ShapeError);
  // The largest valid id and a full-length sequence are accepted.
  const Tensor<double> nines = 9.0 * xt::ones<double>({2, 8});
  BOOST_CHECK_NO_THROW(emb.forward(nines, Mode::eval));
}

BOOST_AUTO_TEST_CASE(embedding_backward_touches_only_used_rows) {
  Rng rng(22);
  Embedding<double> emb("emb", 8, 3, 6, 0.02, rng);
  const Tensor<double> ids = {{2.0, 5.0, 2.0}, {5.0, 0.0, 2.0}};  // 2 and 5 repeat
  emb.forward(ids, Mode::train);
  const Tensor<double> dy = random_tensor(std::vector<std::size_t>{2, 3, 3}, 9);
  const Tensor<double>& dx = emb.backward(dy);
  BOOST_TEST(dx == xt::zeros<double>({2, 3}));

  const auto& dtok = emb.token().grad;
  const auto& dpos = emb.position().grad;
  for (std::size_t row = 0; row < 8; ++row)
    for (std::size_t d = 0; d < 3; ++d) {
      double expected = 0, size = 0;  // sum of dy over the occurrences of this id
      for (std::size_t b = 0; b < 2; ++b)
        for (std::size_t s = 0; s < 3; ++s)
          if (std::size_t(ids(b, s)) == row) expected += dy(b, s, d), size += std::abs(dy(b, s, d));
      // At most 6 terms summed in some order: within 6 u of their sum of |terms| (the
      // sum itself may cancel to near zero).
      if (row == 0 || row == 2 || row == 5)
        BOOST_TEST(std::abs(dtok(row, d) - expected) <=
                   6 * (std::numeric_limits<double>::epsilon() / 2) * size);
      else
        BOOST_TEST(dtok(row, d) == 0.0);  // exactly untouched
    }
  for (std::size_t row = 0; row < 6; ++row)
    for (std::size_t d = 0; d < 3; ++d) {
      if (row < 3)  // a sum of two terms is correctly rounded in either order: exact
        BOOST_TEST(dpos(row, d) == dy(0, row, d) + dy(1, row, d));
      else
        BOOST_TEST(dpos(row, d) == 0.0);
    }

  // After forward_step(start), backward lands on position rows start..start+seq-1.
  std::fill(emb.position().grad.begin(), emb.position().grad.end(), 0.0);
  emb.forward_step(Tensor<double>{{1.0, 1.0}}, 3);
  emb.backward(xt::ones<double>({1, 2, 3}));
  for (std::size_t row = 0; row < 6; ++row)
    for (std::size_t d = 0; d < 3; ++d)
      BOOST_TEST(dpos(row, d) == (row == 3 || row == 4 ? 1.0 : 0.0));
}

BOOST_AUTO_TEST_CASE(built_from_config) {
  auto build = [](const std::string& yaml, Shape input, ModelContext context) {
    Rng rng(23);
    const ConfigNode node = ConfigNode::parse(yaml, "test.yaml");
    const LayerInfo& info = layer_registry().find(node.get("type").scalar());
    LayerConfig<double> config(ConfigSection(node, "layer", info.schema, {"type"}), "x", input,
                               context, rng);
    return info.factory<double>()(config);
  };
  const ModelContext context{50, 16};
  const Shape features = {kAnyDim, kAnyDim, 8};

  auto ln = build("{type: LayerNorm, eps: 0.001}", features, context);
  BOOST_TEST(ln->type() == "LayerNorm");
  BOOST_TEST(dynamic_cast<LayerNorm<double>&>(*ln).eps() == 0.001);
  BOOST_TEST(ln->output_shape(features) == features, boost::test_tools::per_element());
  BOOST_CHECK_THROW(build("{type: LayerNorm, eps: 0}", features, context), ConfigError);
  BOOST_CHECK_THROW(build("{type: LayerNorm}", {kAnyDim, kAnyDim}, context), ConfigError);

  BOOST_TEST(build("{type: ReLU}", features, context)->type() == "ReLU");
  BOOST_TEST(build("{type: GELU}", features, context)->type() == "GELU");
  BOOST_CHECK_THROW(build("{type: GELU, approximate: none}", features, context), ConfigError);

  auto drop = build("{type: Dropout}", features, context);
  BOOST_TEST(dynamic_cast<Dropout<double>&>(*drop).rate() == 0.1);
  BOOST_CHECK_THROW(build("{type: Dropout, rate: 1}", features, context), ConfigError);
  BOOST_CHECK_THROW(build("{type: Dropout, rate: -0.1}", features, context), ConfigError);

  auto emb = build("{type: Embedding, dim: 8}", {kAnyDim, kAnyDim}, context);
  auto& e = dynamic_cast<Embedding<double>&>(*emb);
  BOOST_TEST(e.vocab() == 50u);
  BOOST_TEST(e.max_seq_len() == 16u);
  BOOST_TEST(e.parameters()[0]->name == "x.token");
  BOOST_TEST(e.parameters()[1]->name == "x.position");
  BOOST_TEST(emb->output_shape({kAnyDim, kAnyDim}) == features, boost::test_tools::per_element());
  // init_std is honoured: the sample std of 50 * 8 draws is near 0.02 (and 0 gives zeros).
  const double sd = xt::stddev(e.token().value)();
  BOOST_TEST(sd > 0.015);
  BOOST_TEST(sd < 0.025);
  auto zero = build("{type: Embedding, dim: 8, init_std: 0}", {kAnyDim, kAnyDim}, context);
  BOOST_TEST(xt::all(xt::equal(zero->parameters()[0]->value, 0.0)));
  BOOST_CHECK_EXCEPTION(build("{type: Embedding, dim: 8}", {kAnyDim, kAnyDim}, {0, 16}),
                        ConfigError, [](const ConfigError& err) {
                          return message_contains(err, "vocabulary size") && err.mark().line == 1 &&
                                 err.mark().column > 1;
                        });
  BOOST_CHECK_THROW(build("{type: Embedding}", {kAnyDim, kAnyDim}, context), ConfigError);
}

BOOST_AUTO_TEST_SUITE_END()
