// Every layer through the finite-difference checker in double precision.
#include <boost/test/unit_test.hpp>

#include "framework/grad_check.hpp"
#include "layers/linear.hpp"

using namespace strata;

namespace {
constexpr double kTolerance = 1e-6;

Tensor<double> random_input(std::vector<std::size_t> shape, std::uint64_t seed) {
  Rng rng(seed);
  Tensor<double> x = Tensor<double>::from_shape(shape);
  for (auto& v : x) v = rng.normal(0, 1);
  return x;
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

BOOST_AUTO_TEST_SUITE_END()
