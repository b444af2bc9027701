// Row reductions in SIMD batches (xsimd), shared by the softmaxes of the loss and of
// attention. The split into batches depends only on n, so results do not depend on
// threads or alignment; a tail shorter than a batch runs the scalar formula.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <xsimd/xsimd.hpp>

namespace strata {

// GCC 12's AVX-512 intrinsics (_mm512_undefined_* as the pass-through of an all-ones
// mask) trip its -Wmaybe-uninitialized once inlined into xsimd's exp (GCC PR 105593):
// the .cpp files that use them directly get -Wno-maybe-uninitialized in CMakeLists.txt;
// a header cannot rely on its includers' flags, so it turns the warning off itself.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

// out[v] = exp(z[v] - max) for v < n (out may be z); returns their sum. xsimd's exp is
// within an ulp or two of std::exp; the sum runs in lane-wise partial sums: a scalar exp
// call per element and one serial chain of adds were 3-7% of training.
template <class T>
T exp_shifted_sum(const T* z, T max, std::size_t n, T* out) {
  using Batch = xsimd::batch<T>;
  constexpr std::size_t kWidth = Batch::size;
  const Batch shift(max);
  Batch partial(T(0));
  std::size_t v = 0;
  for (; v + kWidth <= n; v += kWidth) {
    const Batch e = xsimd::exp(Batch::load_unaligned(z + v) - shift);
    e.store_unaligned(out + v);
    partial += e;
  }
  T sum = xsimd::hadd(partial);
  for (; v < n; ++v) sum += (out[v] = std::exp(z[v] - max));
  return sum;
}

// max(z[0..n)), n >= 1, in SIMD batches: exact in any order (a scalar loop was three
// quarters of the loss's time).
template <class T>
T row_max(const T* z, std::size_t n) {
  using Batch = xsimd::batch<T>;
  constexpr std::size_t kWidth = Batch::size;
  T max = z[0];
  std::size_t v = 0;
  if (n >= kWidth) {
    Batch lanes = Batch::load_unaligned(z);
    for (v = kWidth; v + kWidth <= n; v += kWidth)
      lanes = xsimd::max(lanes, Batch::load_unaligned(z + v));
    alignas(64) T lane[kWidth];
    lanes.store_aligned(lane);
    max = *std::max_element(lane, lane + kWidth);
  }
  for (; v < n; ++v) max = std::max(max, z[v]);
  return max;
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace strata
