// Framework pieces outside the layers: loss, clipping, registries, Rng.
#include <boost/test/unit_test.hpp>
#include <cmath>

#include "framework/clip.hpp"
#include "framework/init.hpp"
#include "framework/loss.hpp"
#include "framework/registry.hpp"
#include "framework/rng.hpp"
#include "layers/linear.hpp"
#include "optimizers/adam.hpp"
#include "optimizers/optimizer_registry.hpp"

using namespace strata;

namespace {

// Every built-in type; extend these lists as layers and optimizers are added.
const std::vector<std::string> kBuiltinLayers = {
    "Dropout",   "Embedding",     "FeedForward",      "GELU",
    "LayerNorm", "Linear",        "OutputProjection", "ReLU",
    "Residual",  "SelfAttention", "Sequential",       "TransformerBlock"};
const std::vector<std::string> kBuiltinOptimizers = {"Adam", "AdamW", "SGD"};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// -log softmax(z)[target] written out directly (no max subtraction: small logits).
double token_loss_by_hand(const std::vector<double>& z, std::size_t target) {
  double sum = 0;
  for (double v : z) sum += std::exp(v);
  return std::log(sum) - z[target];
}

Tensor<double> logits_of(std::size_t batch, std::size_t seq, const std::vector<double>& values) {
  Tensor<double> t = Tensor<double>::from_shape({batch, seq, values.size() / (batch * seq)});
  std::copy(values.begin(), values.end(), t.begin());
  return t;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(framework)

BOOST_AUTO_TEST_CASE(cross_entropy_matches_hand_computation) {
  // batch 2, seq 2, vocab 3; position (1, 0) is padding.
  const std::vector<std::vector<double>> rows = {
      {1.0, 2.0, 0.5}, {-1.0, 0.0, 3.0}, {9.0, -9.0, 4.0}, {0.2, 0.1, -0.3}};
  std::vector<double> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  const Tensor<double> logits = logits_of(2, 2, flat);
  const std::vector<std::int32_t> targets = {2, 0, kIgnore, 1};
  Tensor<double> dlogits;
  const LossValue loss = softmax_cross_entropy(logits, targets, dlogits);

  const double l0 = token_loss_by_hand(rows[0], 2), l1 = token_loss_by_hand(rows[1], 0),
               l3 = token_loss_by_hand(rows[3], 1);
  BOOST_TEST(loss.tokens == 3u);
  BOOST_TEST(std::abs(loss.mean - (l0 + l1 + l3) / 3) <= 1e-12);
  BOOST_TEST(std::abs(loss.sum_of_sequence_means - ((l0 + l1) / 2 + l3)) <= 1e-12);

  // d(mean)/dz = (softmax(z) - onehot(target)) / tokens; padding rows get zero.
  for (std::size_t r = 0; r < 4; ++r) {
    double sum = 0;
    for (double v : rows[r]) sum += std::exp(v);
    for (std::size_t v = 0; v < 3; ++v) {
      const double want = targets[r] == kIgnore
                              ? 0.0
                              : (std::exp(rows[r][v]) / sum - (v == std::size_t(targets[r]))) / 3;
      BOOST_TEST(std::abs(dlogits.data()[r * 3 + v] - want) <= 1e-12, "row " << r << " v " << v);
    }
  }
}

BOOST_AUTO_TEST_CASE(cross_entropy_stays_finite_for_huge_logits) {
  const Tensor<double> logits = logits_of(1, 3, {1000, 0, -1000, 1000, 1000, 0, -1000, 1000, 0});
  Tensor<double> dlogits;
  const LossValue loss = softmax_cross_entropy(logits, {0, 1, 0}, dlogits);
  // Row 0: softmax ~ (1, 0, 0), loss ~ 0. Row 1: two equal maxima, loss log 2.
  // Row 2: the target is 2000 below the max, loss 2000.
  BOOST_TEST(std::isfinite(loss.mean));
  BOOST_TEST(std::abs(loss.mean - (0 + std::log(2.0) + 2000) / 3) <= 1e-9);
  for (double g : dlogits) BOOST_TEST(std::isfinite(g));
  BOOST_TEST(std::abs(dlogits(0, 1, 0) - 0.5 / 3) <= 1e-12);
  BOOST_TEST(std::abs(dlogits(0, 1, 1) - (0.5 - 1) / 3) <= 1e-12);

  Tensor<float> logits_f = xt::cast<float>(logits);
  Tensor<float> dlogits_f;
  const LossValue loss_f = softmax_cross_entropy(logits_f, {0, 1, 0}, dlogits_f);
  BOOST_TEST(std::isfinite(loss_f.mean));
  for (float g : dlogits_f) BOOST_TEST(std::isfinite(g));
}

BOOST_AUTO_TEST_CASE(cross_entropy_gradient_matches_finite_differences) {
  Rng rng(11);
  Tensor<double> logits = Tensor<double>::from_shape({2, 3, 5});
  for (auto& v : logits) v = rng.normal(0, 2);
  const std::vector<std::int32_t> targets = {4, 0, kIgnore, 2, 2, 1};
  Tensor<double> dlogits, scratch;
  softmax_cross_entropy(logits, targets, dlogits);
  const double h = 1e-6;
  double max_error = 0;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    const double saved = logits.data()[i];
    logits.data()[i] = saved + h;
    const double up = softmax_cross_entropy(logits, targets, scratch).mean;
    logits.data()[i] = saved - h;
    const double down = softmax_cross_entropy(logits, targets, scratch).mean;
    logits.data()[i] = saved;
    max_error = std::max(max_error, std::abs((up - down) / (2 * h) - dlogits.data()[i]));
  }
  BOOST_TEST_MESSAGE("cross-entropy dlogits max abs error vs finite differences: " << max_error);
  BOOST_TEST(max_error <= 1e-8);
}

BOOST_AUTO_TEST_CASE(clip_grad_norm_scales_to_max_norm) {
  Parameter<double> a("a", Tensor<double>{0.0, 0.0}), b("b", Tensor<double>{0.0});
  a.grad = Tensor<double>{3.0, 4.0};
  b.grad = Tensor<double>{12.0};  // global norm sqrt(9 + 16 + 144) = 13
  const double norm = clip_grad_norm<double>({&a, &b}, 6.5);
  BOOST_TEST(norm == 13.0);
  const double scale = 6.5 / (13.0 + 1e-6);
  BOOST_TEST(std::abs(a.grad(0) - 3 * scale) <= 1e-15);
  BOOST_TEST(std::abs(a.grad(1) - 4 * scale) <= 1e-15);
  BOOST_TEST(std::abs(b.grad(0) - 12 * scale) <= 1e-15);
  BOOST_TEST(std::abs(grad_norm<double>({&a, &b}) - 6.5) <= 1e-6);
}

BOOST_AUTO_TEST_CASE(clip_grad_norm_leaves_small_gradients_untouched) {
  Parameter<double> a("a", Tensor<double>{0.0, 0.0});
  a.grad = Tensor<double>{0.6, 0.8};  // norm 1
  BOOST_TEST(clip_grad_norm<double>({&a}, 5.0) == 1.0);
  BOOST_TEST(a.grad(0) == 0.6);
  BOOST_TEST(a.grad(1) == 0.8);
  BOOST_TEST(clip_grad_norm<double>({&a}, 0.0) == 1.0);  // 0 = off
  BOOST_TEST(a.grad(1) == 0.8);
}

BOOST_AUTO_TEST_CASE(layer_registry_has_every_builtin) {
  for (const auto& type : kBuiltinLayers) {
    BOOST_TEST(layer_registry().contains(type), type);
    const LayerInfo& info = layer_registry().find(type);
    BOOST_TEST(!info.summary.empty(), type);
    BOOST_TEST(info.origin == "built-in");
    BOOST_TEST(static_cast<bool>(info.make_float));
    BOOST_TEST(static_cast<bool>(info.make_double));
  }
}

// Exactly the built-ins (no more, no fewer), so the list above cannot fall behind.
BOOST_AUTO_TEST_CASE(layer_registry_builtins_are_the_list) {
  std::vector<std::string> builtin;
  for (const LayerInfo* info : layer_registry().all())
    if (info->origin == "built-in") builtin.push_back(info->type);
  BOOST_TEST(builtin == kBuiltinLayers, boost::test_tools::per_element());
}

// layers/ installs the built-ins while the library loads; an installer that comes after
// the registry's first use adds its types at once instead of never.
void add_late_type(LayerRegistry& registry) {
  LayerInfo info = make_layer_info<Linear>("TestInstalledLate");
  info.origin = "tests/framework.cpp";  // not one of the list above
  registry.add(std::move(info));
}

BOOST_AUTO_TEST_CASE(set_builtin_layers_after_first_use_adds_at_once) {
  BOOST_TEST(layer_registry().contains("Linear"));  // the registry exists
  BOOST_TEST(!layer_registry().contains("TestInstalledLate"));
  set_builtin_layers(&add_late_type);
  BOOST_TEST(layer_registry().contains("TestInstalledLate"));
}

// Every initialiser draws one normal per value, zeros included, so the init a layer
// picks never shifts the draws of the layers built after it.
BOOST_AUTO_TEST_CASE(every_init_draws_once_per_value) {
  for (const std::string& name : init_names()) {
    Rng reference(7), rng(7);
    Tensor<float> w = Tensor<float>::from_shape({3, 5});
    fill_init(w, parse_init(name), 3, 5, rng);
    for (int i = 0; i < 15; ++i) reference.normal(0.0, 1.0);
    BOOST_TEST(rng.uniform() == reference.uniform(), name);
    if (name == "zeros")
      for (float v : w) BOOST_TEST(v == 0.0f);
  }
  BOOST_TEST(init_std(Init::he, 8, 2) == std::sqrt(2.0 / 8));
  BOOST_TEST(init_std(Init::xavier, 8, 2) == std::sqrt(2.0 / 10));
  BOOST_TEST((parse_init("xavier") == Init::xavier));
}

BOOST_AUTO_TEST_CASE(registry_refuses_a_duplicate_name) {
  LayerRegistry registry("layer");
  registry.add(make_layer_info<Linear>("Linear"));
  try {
    registry.add(make_layer_info<Linear>("Linear"));
    BOOST_ERROR("a duplicate layer name was accepted");
  } catch (const Error& e) {
    BOOST_TEST(contains(e.what(), "\"Linear\""), e.what());
    BOOST_TEST(contains(e.what(), "already registered"), e.what());
  }
  // The process-wide registry refuses too (and stays as it was).
  BOOST_CHECK_THROW(layer_registry().add(make_layer_info<Linear>("Linear")), Error);
  BOOST_TEST(layer_registry().names().size() >= kBuiltinLayers.size());
}

BOOST_AUTO_TEST_CASE(registry_unknown_name_suggests_nearest) {
  try {
    layer_registry().find("Linaer");
    BOOST_ERROR("an unknown layer type was found");
  } catch (const UnknownName& e) {
    const std::string what = e.what();
    BOOST_TEST_MESSAGE(what);
    BOOST_TEST(contains(what, "\"Linaer\""), what);
    BOOST_TEST(contains(what, "did you mean \"Linear\""), what);
    BOOST_TEST(contains(what, "known types:"), what);
    for (const auto& type : kBuiltinLayers) BOOST_TEST(contains(what, type), what);
  }
}

BOOST_AUTO_TEST_CASE(optimizer_registry_has_every_builtin) {
  for (const auto& type : kBuiltinOptimizers) {
    BOOST_TEST(optimizer_registry().contains(type), type);
    const OptimizerInfo& info = optimizer_registry().find(type);
    BOOST_TEST(!info.summary.empty(), type);
    BOOST_TEST(static_cast<bool>(info.make_float));
    BOOST_TEST(static_cast<bool>(info.make_double));
  }
  OptimizerRegistry registry("optimizer");
  registry.add(make_optimizer_info<Adam>("Adam"));
  try {
    registry.add(make_optimizer_info<Adam>("Adam"));
    BOOST_ERROR("a duplicate optimizer name was accepted");
  } catch (const Error& e) {
    BOOST_TEST(contains(e.what(), "optimizer type \"Adam\" is already registered"), e.what());
  }
  try {
    optimizer_registry().find("Adma");
    BOOST_ERROR("an unknown optimizer type was found");
  } catch (const UnknownName& e) {
    const std::string what = e.what();
    BOOST_TEST(contains(what, "did you mean \"Adam\""), what);
    for (const auto& type : kBuiltinOptimizers) BOOST_TEST(contains(what, type), what);
  }
}

BOOST_AUTO_TEST_CASE(rng_same_seed_same_sequence) {
  Rng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const double x = a.uniform();
    BOOST_TEST(x == b.uniform());
    BOOST_TEST((x >= 0 && x < 1));
    differs |= x != c.uniform();
  }
  BOOST_TEST(differs);
  BOOST_TEST(a.normal(0, 1) == b.normal(0, 1));
  BOOST_TEST(a.below(1000) == b.below(1000));
  std::vector<int> u = {1, 2, 3, 4, 5, 6, 7, 8}, v = u;
  a.shuffle(u.begin(), u.end());
  b.shuffle(v.begin(), v.end());
  BOOST_TEST(u == v, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(rng_save_load_continues_identically) {
  Rng a(7);
  for (int i = 0; i < 13; ++i) a.normal(0, 1);  // advance to an arbitrary point
  const std::string saved = a.save();
  Rng b(12345);
  b.load(saved);
  for (int i = 0; i < 50; ++i) {
    BOOST_TEST(a.uniform() == b.uniform());
    BOOST_TEST(a.normal(1, 2) == b.normal(1, 2));
    BOOST_TEST(a.below(17) == b.below(17));
  }
  BOOST_CHECK_THROW(b.load("not a generator state"), Error);
}

BOOST_AUTO_TEST_SUITE_END()
