// Next-token batches from token-id sequences (torch_reference.py's make_batches).
//
// A sequence s of n tokens gives inputs s[0..n-2] and targets s[1..n-1]. A batch
// holds up to batch_size sequences, row-major (batch, length) with
// length = (longest sequence in the batch) - 1; shorter rows are right-padded:
// inputs with pad_id, targets with strata::kIgnore (-1, framework/loss.hpp), which
// the loss skips. Causal attention keeps the padding from touching real positions.
//
//   sequences {5 6 7 8}, {9 4}, pad 0  ->  batch 2, length 3
//   inputs  5 6 7 | 9 0 0
//   targets 6 7 8 | 4 -1 -1
//
// No xtensor here: the trainer converts ids to tensors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace strata {

class Rng;

struct Batch {
  std::size_t batch = 0;              // rows (the last batch of an epoch may be short)
  std::size_t length = 0;             // positions per row
  std::vector<std::int32_t> inputs;   // batch * length, padded with pad_id
  std::vector<std::int32_t> targets;  // batch * length, padded with kIgnore
};

// One epoch of batches. Sequences shorter than 2 tokens are dropped (they have no
// target); the rest keep their relative order unless `shuffle_rng` is given, in
// which case their order is shuffled with shuffle_rng->shuffle (one Fisher-Yates pass
// over the kept sequences, so the run's seed fixes it). Every kept sequence lands in
// exactly one batch.
// Throws strata::Error if batch_size is 0, pad_id is negative, or a sequence has more
// than max_seq_len + 1 tokens (its inputs would not fit the model); the message gives
// the sequence's index and length.
std::vector<Batch> make_batches(const std::vector<std::vector<std::int32_t>>& sequences,
                                std::size_t batch_size, std::size_t max_seq_len,
                                std::int32_t pad_id, Rng* shuffle_rng = nullptr);

// How many sequences make_batches() keeps (those with at least 2 tokens).
std::size_t count_trainable(const std::vector<std::vector<std::int32_t>>& sequences);

}  // namespace strata
