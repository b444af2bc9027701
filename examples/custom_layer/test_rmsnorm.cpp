// RMSNorm's tests: values against a direct computation, and gradients against finite
// differences with Strata's public checker, in double precision.
#define BOOST_TEST_MODULE rmsnorm
#include <boost/test/unit_test.hpp>
#include <cmath>

#include "framework/grad_check.hpp"
#include "framework/model.hpp"
#include "framework/registry.hpp"
#include "rmsnorm.hpp"

using namespace strata;

namespace {
Tensor<double> random_tensor(std::vector<std::size_t> shape, double std, std::uint64_t seed) {
  Rng rng(seed);
  Tensor<double> t = Tensor<double>::from_shape(shape);
  for (auto& v : t) v = rng.normal(0, std);
  return t;
}
}  // namespace

BOOST_AUTO_TEST_CASE(forward_matches_the_formula) {
  example::RMSNorm<double> layer("norm", 4, 1e-6);
  layer.gamma().value = Tensor<double>{1.0, 2.0, -1.0, 0.5};
  const Tensor<double> x = {{1.0, -2.0, 3.0, 0.0}};
  const Tensor<double>& y = layer.forward(x, Mode::eval);
  const double rms = std::sqrt((1.0 + 4.0 + 9.0 + 0.0) / 4 + 1e-6);
  const double expected[] = {1.0 / rms, -4.0 / rms, -3.0 / rms, 0.0};
  for (std::size_t i = 0; i < 4; ++i)
    BOOST_TEST(y(0, i) == expected[i], boost::test_tools::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(gradients_match_finite_differences) {
  example::RMSNorm<double> layer("norm", 6, 1e-6);
  // A non-trivial gamma, so a gamma applied twice or never would show.
  layer.gamma().value = 1.0 + random_tensor({6}, 0.5, 2);
  const GradCheckResult result = check_gradients(layer, random_tensor({2, 3, 6}, 2.0, 1));
  BOOST_TEST_MESSAGE("RMSNorm gradient errors:\n" << result.report());
  BOOST_TEST(result.parameter_errors.size() == 1u);
  BOOST_TEST(result.max_error() <= 1e-6);
}

BOOST_AUTO_TEST_CASE(registered_and_built_from_a_config) {
  // Linking this library registered the layer, as loading it as a plugin does.
  BOOST_TEST(layer_registry().contains("RMSNorm"));
  Rng rng(1);
  const ConfigNode config = ConfigNode::parse(
      "{max_seq_len: 8, vocab_size: 10, layers: [{type: Embedding, dim: 4},"
      " {type: RMSNorm, eps: 1.0e-5}, {type: OutputProjection}]}",
      "model.yaml");
  Model<double> model = build_model<double>(config, 0, rng);
  BOOST_TEST(model.find_parameter("rmsnorm.gamma") != nullptr);
  // A misspelt key is refused with did-you-mean, like any built-in layer's.
  const ConfigNode typo = ConfigNode::parse(
      "{max_seq_len: 8, vocab_size: 10, layers: [{type: Embedding, dim: 4},"
      " {type: RMSNorm, esp: 1}]}",
      "typo.yaml");
  BOOST_CHECK_EXCEPTION(build_model<double>(typo, 0, rng), ConfigError, [](const ConfigError& e) {
    return std::string(e.what()).find("did you mean \"eps\"") != std::string::npos;
  });
}
