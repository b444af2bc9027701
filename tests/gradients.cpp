// Every layer through the finite-difference checker in double precision.
#include <boost/test/unit_test.hpp>

#include "framework/grad_check.hpp"
#include "layers/dropout.hpp"
#include "layers/embedding.hpp"
#include "layers/gelu.hpp"
#include "layers/layer_norm.hpp"
#include "layers/linear.hpp"
#include "layers/relu.hpp"

using namespace strata;

namespace {
constexpr double kTolerance = 1e-6;

Tensor<double> random_input(std::vector<std::size_t> shape, std::uint64_t seed) {
  Rng rng(seed);
  Tensor<double> x = Tensor<double>::from_shape(shape);
  for (auto& v : x) v = rng.normal(0, 1);
  return x;
}

// Finite differences straddling ReLU's kink are wrong: push every value to |x| >= 0.1
// (the step is 1e-6, so x +- h never changes sign).
Tensor<double> away_from_zero(Tensor<double> x) {
  for (auto& v : x) v += v < 0 ? -0.1 : 0.1;
  return x;
}

void randomize(Parameter<double>& p, double mean, double std, std::uint64_t seed) {
  Rng rng(seed);
  for (auto& v : p.value) v = rng.normal(mean, std);
}

void expect_gradients_match(Layer<double>& layer, const Tensor<double>& x,
                            const GradCheckOptions& options = {}) {
  const GradCheckResult result = check_gradients(layer, x, options);
  BOOST_TEST_MESSAGE(layer.type() << " gradient errors:\n" << result.report());
  BOOST_TEST(result.max_error() <= kTolerance, layer.type() << "\n" << result.report());
  BOOST_TEST(result.parameter_errors.size() == layer.parameters().size());
}
}  // namespace

BOOST_AUTO_TEST_SUITE(gradients)

BOOST_AUTO_TEST_CASE(linear) {
  Rng rng(3);
  Linear<double> layer("fc", 5, 4, true, Init::he, rng);
  expect_gradients_match(layer, random_input({2, 3, 5}, 7));
}

BOOST_AUTO_TEST_CASE(layer_norm) {
  LayerNorm<double> layer("ln", 6, 1e-5);
  // Non-trivial gamma and beta, so their gradients and dx's dependence on gamma are
  // exercised (the defaults 1 and 0 would hide a gamma that is applied twice or never).
  randomize(layer.gamma(), 1.0, 0.5, 11);
  randomize(layer.beta(), 0.0, 0.5, 12);
  Tensor<double> x = random_input({2, 3, 6}, 8);
  x *= 3.0;
  x += 1.5;  // a non-zero mean and a spread unlike 1, so normalising is not a no-op
  expect_gradients_match(layer, x);
}

BOOST_AUTO_TEST_CASE(relu) {
  ReLU<double> layer("relu");
  const Tensor<double> x = away_from_zero(random_input({2, 3, 5}, 9));
  BOOST_TEST(xt::any(x < 0.0));  // both branches are checked
  BOOST_TEST(xt::any(x > 0.0));
  expect_gradients_match(layer, x);
}

BOOST_AUTO_TEST_CASE(gelu) {
  GELU<double> layer("gelu");
  Tensor<double> x = random_input({2, 3, 5}, 10);
  x *= 2.0;  // reach the saturated tails too
  expect_gradients_match(layer, x);
}

BOOST_AUTO_TEST_CASE(embedding) {
  Rng rng(4);
  Embedding<double> layer("emb", 7, 5, 6, 0.02, rng);
  // Ids repeat (3 three times, 0 twice), so the scatter-add must accumulate; seq 4 < 6
  // leaves position rows unused. Ids are not differentiable: parameters only.
  const Tensor<double> ids = {{3.0, 0.0, 3.0, 6.0}, {1.0, 3.0, 0.0, 2.0}};
  GradCheckOptions options;
  options.check_input = false;
  expect_gradients_match(layer, ids, options);
}

BOOST_AUTO_TEST_CASE(dropout) {
  Rng rng(5);
  Dropout<double> layer("drop", 0.3, rng);
  GradCheckOptions options;
  options.mode = Mode::train;
  options.before_forward = [&layer] { layer.reseed(42); };  // the same mask every time
  const Tensor<double> x = random_input({2, 3, 5}, 13);
  layer.reseed(42);
  const Tensor<double> y = layer.forward(x, Mode::train);
  BOOST_TEST(xt::any(xt::equal(y, 0.0)));  // the mask really drops something here
  BOOST_TEST(xt::any(xt::not_equal(y, 0.0)));
  expect_gradients_match(layer, x, options);
}

BOOST_AUTO_TEST_SUITE_END()
