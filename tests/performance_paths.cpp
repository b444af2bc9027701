// The fast paths against their plain counterparts: every place where an optimisation
// could make results diverge from the straightforward implementation (vectorised
// reductions, fused loops, threads) is checked here against a reference computed the
// plain way. No timings: these tests only check results.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <vector>

#include "framework/clip.hpp"
#include "framework/rng.hpp"

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

BOOST_AUTO_TEST_SUITE_END()
