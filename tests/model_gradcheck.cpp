// The whole-model gradient checker (check_model_gradients, check_loss_gradients),
// which `strata gradcheck` runs: it must pass correct models, catch a wrong backward,
// report true zero gradients as such, and sample entries when asked.
#include <boost/test/unit_test.hpp>
#include <cmath>

#include "framework/grad_check.hpp"
#include "framework/model.hpp"
#include "framework/registry.hpp"

using namespace strata;

namespace {

// y = 2x forward, but backward returns dy: the gradient of everything before it is
// off by a factor 2.
template <class T>
class HalfGradient : public Layer<T> {
 public:
  static constexpr const char* kSummary = "test: y = 2x with a backward that forgets the 2";
  static Schema schema() { return {}; }
  static std::unique_ptr<Layer<T>> from_config(const LayerConfig<T>& config) {
    return std::make_unique<HalfGradient>(config.name());
  }
  explicit HalfGradient(std::string name) : Layer<T>(std::move(name)) {}
  std::string_view type() const override { return "ModelGradcheckHalfGradient"; }
  const Tensor<T>& forward(const Tensor<T>& x, Mode) override { return y_ = T(2) * x; }
  const Tensor<T>& backward(const Tensor<T>& dy) override { return dx_ = dy; }
  Shape output_shape(const Shape& in) const override { return in; }

 private:
  Tensor<T> y_, dx_;
};

Model<double> model_from(const std::string& layers, std::int64_t vocab, std::uint64_t seed = 3) {
  Rng rng(seed);
  const std::string yaml = "model:\n  max_seq_len: 8\n  layers:\n" + layers;
  return build_model<double>(ConfigNode::parse(yaml, "model.yaml").get("model"), vocab, rng);
}

struct Batch {
  Tensor<double> ids;
  std::vector<std::int32_t> targets;
};

Batch random_batch(std::size_t batch, std::size_t seq, std::int64_t vocab, std::uint64_t seed) {
  Rng rng(seed);
  Batch b{Tensor<double>::from_shape({batch, seq}), std::vector<std::int32_t>(batch * seq)};
  for (auto& id : b.ids) id = double(rng.below(std::uint64_t(vocab)));
  for (auto& t : b.targets) t = std::int32_t(rng.below(std::uint64_t(vocab)));
  return b;
}

const std::string kTransformer =
    "    - {type: Embedding, dim: 6, init_std: 0.5}\n"
    "    - {type: TransformerBlock, name: blocks, repeat: 2, dim: 6, hidden: 10, heads: 2,"
    " norm: pre, bias: true, out_proj: true}\n"
    "    - {type: OutputProjection}\n";

}  // namespace

BOOST_AUTO_TEST_SUITE(model_gradcheck)

BOOST_AUTO_TEST_CASE(a_transformer_passes_and_b_k_is_a_zero_gradient) {
  Model<double> model = model_from(kTransformer, 9);
  const Batch b = random_batch(2, 5, 9, 4);
  const LossGradCheckResult result = check_model_gradients(model, b.ids, b.targets);
  BOOST_TEST_MESSAGE("loss " << result.loss << "\n" << result.report());
  BOOST_TEST(result.parameters.size() == model.parameters().size());
  BOOST_TEST(result.passed(1e-6));
  BOOST_TEST(result.loss > 0.5 * std::log(9.0));  // random targets: about ln(vocab)
  for (const ParameterGradCheck& p : result.parameters) {
    BOOST_TEST(p.checked == p.size, p.name);
    const bool key_bias = p.name.size() > 4 && p.name.substr(p.name.size() - 4) == ".b_k";
    // Adding c to every key shifts a row of scores by q.c, which softmax ignores.
    BOOST_TEST(p.zero_gradient == key_bias, p.name);
    if (key_bias) {
      BOOST_TEST(p.analytic_norm <= 1e-12, p.name);
    } else {  // init_std 0.5: every other gradient is well resolved, none needs its floor
      BOOST_TEST(p.error <= 1e-6, p.name);
      BOOST_TEST(p.floor <= 1e-6, p.name);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_wrong_backward_is_caught_where_it_shows) {
  if (!layer_registry().contains("ModelGradcheckHalfGradient"))
    layer_registry().add(make_layer_info<HalfGradient>("ModelGradcheckHalfGradient"));
  Model<double> model = model_from(
      "    - {type: Embedding, dim: 4}\n"
      "    - {type: ModelGradcheckHalfGradient}\n"
      "    - {type: OutputProjection}\n",
      7);
  const Batch b = random_batch(2, 4, 7, 5);
  const LossGradCheckResult result = check_model_gradients(model, b.ids, b.targets);
  BOOST_TEST_MESSAGE(result.report());
  BOOST_TEST(!result.passed(1e-6));
  for (const ParameterGradCheck& p : result.parameters) {
    if (p.name.rfind("embedding.", 0) == 0) {  // analytic = numeric / 2
      BOOST_TEST(p.error == 0.5, p.name << boost::test_tools::tolerance(1e-6));
      BOOST_TEST(!p.passed(1e-6), p.name);
    } else {  // after the broken layer: still right
      BOOST_TEST(p.error <= 1e-6, p.name);
    }
  }
}

BOOST_AUTO_TEST_CASE(entries_are_sampled_when_asked) {
  Model<double> model = model_from(kTransformer, 9);
  const Batch b = random_batch(1, 3, 9, 6);
  LossGradCheckOptions options;
  options.max_entries = 5;
  const LossGradCheckResult result = check_model_gradients(model, b.ids, b.targets, options);
  for (const ParameterGradCheck& p : result.parameters)
    BOOST_TEST(p.checked == std::min<std::size_t>(5, p.size), p.name);
  BOOST_TEST(result.passed(1e-6));
}

BOOST_AUTO_TEST_CASE(any_scalar_loss_against_a_hand_computed_gradient) {
  // loss = sum(w^3) / 3, d/dw = w^2.
  Parameter<double> w("w", Tensor<double>{0.5, -1.5, 2.0});
  auto loss = [&] {
    double s = 0;
    for (double v : w.value) s += v * v * v / 3;
    return s;
  };
  auto right = [&] {
    for (std::size_t i = 0; i < 3; ++i) w.grad(i) += w.value(i) * w.value(i);
  };
  auto wrong = [&] {
    for (std::size_t i = 0; i < 3; ++i) w.grad(i) += w.value(i);
  };
  w.grad.fill(7.0);  // stale grads must be cleared by the checker
  const LossGradCheckResult good = check_loss_gradients({&w}, loss, right);
  BOOST_TEST(good.loss == (0.125 - 3.375 + 8.0) / 3, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(good.max_error() <= 1e-9);
  BOOST_TEST(good.passed(1e-6));
  BOOST_TEST(good.parameters.at(0).analytic_norm == std::sqrt(0.0625 + 5.0625 + 16.0),
             boost::test_tools::tolerance(1e-12));
  const LossGradCheckResult bad = check_loss_gradients({&w}, loss, wrong);
  BOOST_TEST_MESSAGE(bad.report());
  BOOST_TEST(bad.max_error() > 0.1);
  BOOST_TEST(!bad.passed(1e-6));
}

BOOST_AUTO_TEST_SUITE_END()
