#include "framework/rng.hpp"

#include <cmath>
#include <numbers>
#include <sstream>

#include "framework/errors.hpp"

namespace strata {

double Rng::uniform() {
  // 53 random bits -> a double in [0, 1), independent of the standard library's
  // generate_canonical (whose results differ between implementations).
  return static_cast<double>(engine_() >> 11) * 0x1.0p-53;
}

double Rng::normal(double mean, double std) {
  const double u1 = 1.0 - uniform();  // (0, 1]: log stays finite
  const double u2 = uniform();
  return mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

std::uint64_t Rng::below(std::uint64_t n) {
  // Rejection sampling removes modulo bias.
  const std::uint64_t limit =
      std::numeric_limits<std::uint64_t>::max() - std::numeric_limits<std::uint64_t>::max() % n;
  std::uint64_t r;
  do r = engine_();
  while (r >= limit);
  return r % n;
}

std::string Rng::save() const {
  std::ostringstream out;
  out << engine_;
  return out.str();
}

void Rng::load(const std::string& state) {
  std::istringstream in(state);
  in >> engine_;
  if (!in) throw Error("corrupt random generator state");
}

}  // namespace strata
