// Softmax cross-entropy over a batch of sequences with a padding mask.
//
// logits:  (batch, seq, vocab)
// targets: batch*seq ids, row-major; kIgnore (-1) marks padding, which adds nothing
//          to the loss or the gradient.
// Objective: the mean over all non-padding tokens of -log softmax(logits)[target]
// (PyTorch's cross_entropy with ignore_index). Computed with the max subtracted
// (stable for any logit size). dlogits receives d(objective)/d(logits).
#pragma once

#include <cstdint>
#include <vector>

#include "framework/tensor.hpp"

namespace strata {

inline constexpr std::int32_t kIgnore = -1;

struct LossValue {
  double mean = 0;  // the objective
  double sum_of_sequence_means =
      0;                   // sum over sequences of their mean token loss (what RustGPT prints)
  std::size_t tokens = 0;  // non-padding targets
};

template <class T>
LossValue softmax_cross_entropy(const Tensor<T>& logits, const std::vector<std::int32_t>& targets,
                                Tensor<T>& dlogits);

}  // namespace strata
