// Global-norm gradient clipping (as torch.nn.utils.clip_grad_norm_): if the L2 norm
// of all gradients together exceeds max_norm, every gradient is scaled by
// max_norm / (norm + 1e-6). Returns the norm before clipping.
#pragma once

#include <vector>

#include "framework/parameter.hpp"

namespace strata {

template <class T>
double clip_grad_norm(const std::vector<Parameter<T>*>& parameters, double max_norm);

// The gradients' global L2 norm, summed in double.
template <class T>
double grad_norm(const std::vector<Parameter<T>*>& parameters);

// sum_i x[i]^2 in double (exact squares, 32 vectorised lanes combined in a fixed order).
template <class T>
double sum_of_squares(const T* x, std::size_t n);

}  // namespace strata
