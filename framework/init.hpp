// Initialisers: how a layer fills its weights at construction, in one place.
//
// Every draw comes from the run's Rng in row-major order, one normal draw per value
// (zeros too: std 0 still draws, so choosing zeros does not shift later layers' draws).
// He keeps a ReLU layer's activations at unit variance, N(0, 2/fan_in); Xavier balances
// the forward and backward passes, N(0, 2/(fan_in + fan_out)).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "framework/rng.hpp"
#include "framework/tensor.hpp"

namespace strata {

enum class Init { he, xavier, zeros };

// The names a config's `init:` key accepts, and the Init each one means (an unknown name
// is refused by the key's schema before it gets here; it reads as he).
std::vector<std::string> init_names();
Init parse_init(const std::string& name);

// The standard deviation of `init` for a weight mapping fan_in inputs to fan_out outputs.
double init_std(Init init, std::size_t fan_in, std::size_t fan_out);

// Fills `t` with N(0, std) draws from rng (in row-major order).
template <class T>
void fill_normal(Tensor<T>& t, double std, Rng& rng);

// fill_normal with init_std(init, fan_in, fan_out).
template <class T>
void fill_init(Tensor<T>& t, Init init, std::size_t fan_in, std::size_t fan_out, Rng& rng) {
  fill_normal(t, init_std(init, fan_in, fan_out), rng);
}

}  // namespace strata
