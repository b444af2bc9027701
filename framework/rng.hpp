// The one seeded random generator of a run. Everything random (initial weights,
// dropout masks, shuffling, sampling) draws from it in a fixed order, so one seed
// gives the same run bit for bit on the same machine and thread count. It keeps no
// hidden state outside the engine (no cached Box-Muller pair), so save()/load()
// capture everything a resumed run needs.
#pragma once

#include <cstdint>
#include <random>
#include <string>

namespace strata {

class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0) : engine_(seed) {}

  double uniform();                        // [0, 1)
  double normal(double mean, double std);  // Box-Muller, both uniforms drawn each call
  std::uint64_t below(std::uint64_t n);    // uniform integer in [0, n)

  template <class It>
  void shuffle(It first, It last) {  // Fisher-Yates with our own draws: portable order
    for (auto n = last - first; n > 1; --n) std::swap(first[n - 1], first[below(n)]);
  }

  std::string save() const;
  void load(const std::string& state);

 private:
  std::mt19937_64 engine_;
};

}  // namespace strata
