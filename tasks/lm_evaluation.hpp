// A language model's loss on text it may not have trained on: the mean next-token
// cross-entropy per token (nats) and its perplexity, exp(mean).
//
// Every text is encoded whole and cut into windows of max_seq_len + 1 tokens that
// overlap by one token, so that each token after a text's first is predicted exactly
// once (a long text's later windows see only their own window as context, as in
// nanoGPT's and llm.c's evaluation). The windows run in batches of `batch` rows
// (right-padded, padding ignored by the loss) in eval mode (no dropout).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "framework/model.hpp"

namespace strata {

struct TokenLoss {
  double sum = 0;          // nats over all predicted tokens
  std::size_t tokens = 0;  // predicted tokens
  std::size_t texts = 0;   // texts with at least 2 tokens (those that predict any)
  double mean() const { return tokens ? sum / double(tokens) : 0.0; }
  double perplexity() const;
};

// The windows of one encoded text: max_len + 1 tokens each (the last may be shorter,
// never below 2); an overlap of one token between neighbours.
std::vector<std::vector<std::int32_t>> prediction_windows(const std::vector<std::int32_t>& ids,
                                                          std::size_t max_len);

// The loss of `model` on `sequences` (token ids). `pad_id` fills short rows.
TokenLoss language_model_loss(Model<float>& model,
                              const std::vector<std::vector<std::int32_t>>& sequences,
                              std::int32_t pad_id, std::size_t batch = 16);

}  // namespace strata
