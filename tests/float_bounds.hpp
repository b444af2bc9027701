// Tolerances for comparing two evaluations of the same float computation that differ
// in summation order: another OpenBLAS kernel (OPENBLAS_CORETYPE), another SIMD width
// (-march), another blocking (a KV-cache step against the full forward). Such results
// are not bit-identical, and no per-element relative bound holds for them: a value near
// zero is the difference of terms much larger than itself, and its error is a fraction
// of those terms, not of the value.
//
// The bound (Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., §3.1):
// a sum or dot product of n terms computed in any order in precision u = eps / 2 has
// |fl(x.y) - x.y| <= gamma_n |x|.|y|, gamma_n = n u / (1 - n u) ~ n u. Two evaluations
// in different orders therefore differ by at most 2 n u |x|.|y|. Through a chain of
// such reductions (a network's layers) the first-order errors add: n becomes the sum of
// the reduction lengths along the path from input to output, as long as each stage
// passes errors on without amplifying them relative to the magnitudes it carries (true
// of products, softmax and normalisation, which rescale error and value alike).
//
// |x|.|y| is not known at the output; the largest |value| of the row (a row of logits)
// stands in for it. It is smaller than |x|.|y| by up to sqrt(n) for uncorrelated terms,
// while gamma_n, a worst case in which every rounding error has the same sign, exceeds
// the typical error (which grows like sqrt(n) u) by as much: the two cancel to first
// order, and the tests print the measured error next to the bound.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

namespace strata::testing {

// 2 n u M: how far two evaluations of an n-term reduction (or a chain whose reduction
// lengths sum to n) of magnitude M may differ in precision T.
template <class T>
double reordering_bound(std::size_t n, double magnitude) {
  const double u = std::numeric_limits<T>::epsilon() / 2;
  return 2.0 * double(n) * u * magnitude;
}

// The sum of the reduction lengths along one position's path through a transformer LM
// (Embedding, `blocks` TransformerBlocks, OutputProjection) over `positions` positions:
// per block Q/K/V (dim), scores (dim / heads), the softmax's normaliser and the weighted sum of
// values (positions each), the output projection (dim), two layer norms (mean and variance:
// 2 dim each), the feed-forward layer (dim, then hidden); then a final layer norm
// (2 dim, pre-norm only; counted always) and the projection to the vocabulary (dim).
inline std::size_t transformer_path_length(std::size_t blocks, std::size_t dim, std::size_t heads,
                                           std::size_t hidden, std::size_t positions) {
  const std::size_t block = dim + dim / heads + 2 * positions + dim + 2 * 2 * dim + dim + hidden;
  return blocks * block + 2 * dim + dim;
}

// The largest |value| of n values from `row` (the magnitude M of a row of logits).
template <class T>
double row_magnitude(const T* row, std::size_t n) {
  double m = 0;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::abs(double(row[i])));
  return m;
}

}  // namespace strata::testing
