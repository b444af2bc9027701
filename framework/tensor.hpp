// Tensor types. Every layer works on row-major xtensor arrays of one scalar type T
// (float for training, double for gradient checks). Token ids travel in the same
// tensor type (exact in float up to 2^24), as Caffe's Embed layer takes them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

namespace strata {

template <class T>
using Tensor = xt::xarray<T, xt::layout_type::row_major>;

// A symbolic shape used to validate a config before any work: kAnyDim stands for a
// size only known at run time (batch, sequence length).
using Shape = std::vector<std::int64_t>;
inline constexpr std::int64_t kAnyDim = -1;

std::string to_string(const Shape& shape);  // "(*, *, 128)"

// Number of rows when the last axis is the feature axis: product of all leading dims.
template <class T>
std::size_t leading_rows(const Tensor<T>& x) {
  return x.dimension() == 0 ? 1 : x.size() / x.shape().back();
}

// Resize `t` to `shape` only if it differs: buffers are allocated once per shape.
template <class T, class S>
void ensure_shape(Tensor<T>& t, const S& shape) {
  if (t.dimension() != shape.size() || !std::equal(shape.begin(), shape.end(), t.shape().begin()))
    t.resize(std::vector<std::size_t>(shape.begin(), shape.end()));
}

}  // namespace strata
