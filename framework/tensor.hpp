// Tensor types. Every layer works on row-major xtensor arrays of one scalar type T
// (float for training, double for gradient checks). Token ids travel in the same
// tensor type (exact in float up to 2^24), as Caffe's Embed layer takes them.
#pragma once

#include <cstddef>
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

// out = a + b element-wise (a and b of the same size; out takes a's shape): the
// residual connections' sum.
template <class T>
void add_into(Tensor<T>& out, const Tensor<T>& a, const Tensor<T>& b) {
  ensure_shape(out, a.shape());
  const T* pa = a.data();
  const T* pb = b.data();
  T* po = out.data();
  for (std::size_t i = 0, n = a.size(); i < n; ++i) po[i] = pa[i] + pb[i];
}

// Buffers a layer may hand back to the allocator once its caller says they are dead
// (Layer::release, framework/chain.hpp). Only buffers of at least
// release_threshold_bytes() go: a small buffer costs little memory to keep and saves a
// malloc per step, while for large ones memory matters more than a malloc, and glibc
// gives the freed block straight to the next layer asking for the same size. Default
// 4 MiB; tests set 0 (ScopedReleaseThreshold) to release everything and prove that no
// layer reads a buffer it was told is dead.
std::size_t release_threshold_bytes();
class ScopedReleaseThreshold {
 public:
  explicit ScopedReleaseThreshold(std::size_t bytes);
  ~ScopedReleaseThreshold();
  ScopedReleaseThreshold(const ScopedReleaseThreshold&) = delete;
  ScopedReleaseThreshold& operator=(const ScopedReleaseThreshold&) = delete;

 private:
  std::size_t previous_;
};

// Frees `t` (leaving an empty 0-d tensor, which the next ensure_shape resizes) when it
// holds at least release_threshold_bytes().
template <class T>
void release_if_large(Tensor<T>& t) {
  if (t.size() * sizeof(T) >= release_threshold_bytes()) t = Tensor<T>();
}

}  // namespace strata
