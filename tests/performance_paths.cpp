// The fast paths against their plain counterparts: every place where an optimisation
// could make results diverge from the straightforward implementation (vectorised
// reductions, fused loops, threads) is checked here against a reference computed the
// plain way. No timings: these tests only check results.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <vector>

#include <memory>

#include "framework/clip.hpp"
#include "framework/denormals.hpp"
#include "framework/rng.hpp"
#include "optimizers/adam.hpp"

using namespace strata;

namespace {

std::vector<float> random_floats(std::size_t n, double std, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<float> out(n);
  for (float& v : out) v = float(rng.normal(0.0, std));
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(performance_paths)

// The lane-wise vectorised sum of squares against a sequential long double sum, for
// lengths around the lane count (tails) and a parameter-sized one.
BOOST_AUTO_TEST_CASE(sum_of_squares_matches_sequential_sum) {
  for (std::size_t n : {0, 1, 31, 32, 33, 95, 1000, 65537}) {
    const std::vector<float> x = random_floats(n, 0.3, 7 + n);
    long double reference = 0;
    for (float v : x) reference += (long double)v * (long double)v;
    const double fast = sum_of_squares(x.data(), n);
    const double error = n ? std::abs(double(reference) - fast) / double(reference) : fast;
    BOOST_TEST_MESSAGE("sum_of_squares n=" << n << " relative error " << error);
    BOOST_TEST(error <= 1e-14);
  }
}

// A parameter whose gradient turns zero: Adam's m decays into subnormals (and would
// stay at 2^-149 for ever). Flushing them to zero must not change the weights.
BOOST_AUTO_TEST_CASE(flushing_subnormals_keeps_adam_weights) {
  auto run = [](bool flush, float& m_end) {
    std::unique_ptr<ScopedFlushDenormals> guard;
    if (flush) guard = std::make_unique<ScopedFlushDenormals>();
    Parameter<float> p("w", Tensor<float>{0.25f, -0.5f, 1e-3f, 0.0f});
    Adam<float> adam(5e-4);
    for (int step = 0; step < 1500; ++step) {
      for (std::size_t i = 0; i < 4; ++i) p.grad(i) = step < 20 ? 0.01f * float(i + 1) : 0.0f;
      adam.step({&p}, 5e-4);
    }
    m_end = adam.state().at("w/m")(0);
    return Tensor<float>(p.value);
  };
  float m_plain = 0, m_flushed = 0;
  const Tensor<float> plain = run(false, m_plain), flushed = run(true, m_flushed);
  BOOST_TEST_MESSAGE("m after 1480 zero gradients: " << m_plain << " plain, " << m_flushed
                                                     << " flushed");
  BOOST_TEST(std::fpclassify(m_plain) == FP_SUBNORMAL);  // the slow case is exercised
  BOOST_TEST(m_flushed == 0.0f);
  for (std::size_t i = 0; i < 4; ++i) BOOST_TEST(plain(i) == flushed(i));
}

BOOST_AUTO_TEST_SUITE_END()
