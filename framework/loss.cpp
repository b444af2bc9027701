#include "framework/loss.hpp"

#include <algorithm>
#include <cmath>

#include "framework/layer.hpp"
#include "framework/parallel.hpp"
#include "framework/simd_math.hpp"

namespace strata {

namespace {

// The number of positions that count (target != kIgnore); refuses a target outside
// the vocabulary.
std::size_t count_targets(const std::vector<std::int32_t>& targets, std::size_t vocab) {
  std::size_t tokens = 0;
  for (auto t : targets) {
    if (t == kIgnore) continue;
    if (t < 0 || static_cast<std::size_t>(t) >= vocab)
      throw ShapeError("loss: target id " + std::to_string(t) + " outside the vocabulary");
    ++tokens;
  }
  return tokens;
}

// One position: g = scale * (softmax(z) - onehot(target)); returns -log softmax(z)[target]
// in double. An ignored position gets a zero gradient row and no loss (returns 0).
template <class T>
double row_loss(const T* z, std::int32_t target, std::size_t vocab, T scale, T* g) {
  if (target == kIgnore) {
    std::fill(g, g + vocab, T(0));
    return 0.0;
  }
  const T max = row_max(z, vocab);
  const T sum = exp_shifted_sum(z, max, vocab, g);
  const T inv = T(1) / sum;
  for (std::size_t v = 0; v < vocab; ++v) g[v] *= inv * scale;
  g[target] -= scale;
  return double(max) + std::log(double(sum)) - double(z[target]);
}

// The token losses added in row order, as one thread would: value.mean over all
// counted tokens and value.sum_of_sequence_means over the sequences.
void sum_token_losses(const double* token_loss, const std::vector<std::int32_t>& targets,
                      std::size_t batch, std::size_t seq, LossValue& value) {
  double total = 0;
  for (std::size_t b = 0; b < batch; ++b) {
    double sequence_total = 0;
    std::size_t sequence_tokens = 0;
    for (std::size_t s = 0; s < seq; ++s) {
      const std::size_t row = b * seq + s;
      if (targets[row] == kIgnore) continue;
      sequence_total += token_loss[row];
      ++sequence_tokens;
    }
    total += sequence_total;
    if (sequence_tokens) value.sum_of_sequence_means += sequence_total / double(sequence_tokens);
  }
  value.mean = value.tokens ? total / double(value.tokens) : 0.0;
}

}  // namespace

template <class T>
LossValue softmax_cross_entropy(const Tensor<T>& logits, const std::vector<std::int32_t>& targets,
                                Tensor<T>& dlogits) {
  if (logits.dimension() != 3) throw ShapeError("loss expects logits (batch, seq, vocab)");
  const std::size_t batch = logits.shape(0), seq = logits.shape(1), vocab = logits.shape(2);
  if (targets.size() != batch * seq)
    throw ShapeError("loss: " + std::to_string(targets.size()) + " targets for " +
                     std::to_string(batch * seq) + " positions");
  ensure_shape(dlogits, logits.shape());
  LossValue value;
  value.tokens = count_targets(targets, vocab);
  const T scale = value.tokens ? T(1) / T(value.tokens) : T(0);
  const T* in = logits.data();
  T* grad = dlogits.data();
  // Rows are independent: each writes its gradient row and its token's loss (on the
  // thread pool when large). Scratch reused across steps (no per-step allocation), as
  // grad_norm's. Reached through a plain pointer: inside the lambda, a thread_local's
  // name would denote the executing worker's own (empty) instance.
  thread_local std::vector<double> token_loss_scratch;
  token_loss_scratch.resize(batch * seq);
  double* token_loss = token_loss_scratch.data();
  parallel_rows(batch * seq, vocab, [&](std::size_t first, std::size_t last) {
    for (std::size_t row = first; row < last; ++row)
      token_loss[row] = row_loss(in + row * vocab, targets[row], vocab, scale, grad + row * vocab);
  });
  sum_token_losses(token_loss, targets, batch, seq, value);
  return value;
}

template LossValue softmax_cross_entropy<float>(const Tensor<float>&,
                                                const std::vector<std::int32_t>&, Tensor<float>&);
template LossValue softmax_cross_entropy<double>(const Tensor<double>&,
                                                 const std::vector<std::int32_t>&, Tensor<double>&);

}  // namespace strata
