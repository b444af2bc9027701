// Global-norm gradient clipping (as torch.nn.utils.clip_grad_norm_): if the L2 norm
// of all gradients together exceeds max_norm (strictly), every gradient is scaled by
// max_norm / (norm + 1e-6). Returns the norm before clipping. At or under the threshold
// the gradients are left bit for bit; torch multiplies by min(1, max_norm / (norm +
// 1e-6)) always, so for a norm within 1e-6 under max_norm it shrinks them slightly (by
// less than 1e-6 / max_norm relative): the only difference (tests/clipping.cpp).
#pragma once

#include <vector>

#include "framework/parameter.hpp"

namespace strata {

template <class T>
double clip_grad_norm(const std::vector<Parameter<T>*>& parameters, double max_norm);

// The gradients' global L2 norm, summed in double over fixed chunks of each gradient
// (on the thread pool; the chunks' sums are added in order, so the result does not
// depend on the number of threads).
template <class T>
double grad_norm(const std::vector<Parameter<T>*>& parameters);
// The same sum before the square root: the trainer adds it up layer by layer during
// backward (Model::backward's completed hook).
template <class T>
double squared_grad_sum(const std::vector<Parameter<T>*>& parameters);

// The factor clip_grad_norm scales the gradients by: max_norm / (norm + 1e-6) when
// max_norm > 0 and norm > max_norm, else exactly 1.
template <class T>
T clip_scale(double norm, double max_norm) {
  return max_norm > 0 && norm > max_norm ? T(max_norm / (norm + 1e-6)) : T(1);
}

// sum_i x[i]^2 in double (exact squares, 32 vectorised lanes combined in a fixed order).
template <class T>
double sum_of_squares(const T* x, std::size_t n);

}  // namespace strata
