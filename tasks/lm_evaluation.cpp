#include "tasks/lm_evaluation.hpp"

#include <algorithm>
#include <cmath>

#include "framework/errors.hpp"
#include "framework/loss.hpp"
#include "tasks/batch.hpp"

namespace strata {

double TokenLoss::perplexity() const { return std::exp(mean()); }

std::vector<std::vector<std::int32_t>> prediction_windows(const std::vector<std::int32_t>& ids,
                                                          std::size_t max_len) {
  if (max_len == 0) throw Error("prediction_windows: the model's max_seq_len is 0");
  std::vector<std::vector<std::int32_t>> windows;
  for (std::size_t start = 0; start + 1 < ids.size(); start += max_len) {
    const std::size_t end = std::min(ids.size(), start + max_len + 1);
    windows.emplace_back(ids.begin() + long(start), ids.begin() + long(end));
  }
  return windows;
}

TokenLoss language_model_loss(Model<float>& model,
                              const std::vector<std::vector<std::int32_t>>& sequences,
                              std::int32_t pad_id, std::size_t batch) {
  const std::size_t max_len = std::size_t(model.max_seq_len);
  TokenLoss total;
  std::vector<std::vector<std::int32_t>> windows;
  for (const auto& ids : sequences) {
    auto cut = prediction_windows(ids, max_len);
    total.texts += !cut.empty();
    for (auto& w : cut) windows.push_back(std::move(w));
  }
  Tensor<float> input, dlogits;
  for (const Batch& b : make_batches(windows, batch, max_len, pad_id)) {
    ensure_shape(input, std::vector<std::size_t>{b.batch, b.length});
    std::copy(b.inputs.begin(), b.inputs.end(), input.begin());
    const Tensor<float>& logits = model.forward(input, Mode::eval);
    const LossValue loss = softmax_cross_entropy(logits, b.targets, dlogits);
    total.sum += loss.mean * double(loss.tokens);
    total.tokens += loss.tokens;
  }
  return total;
}

}  // namespace strata
