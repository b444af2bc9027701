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
// Data parallel (training/data_parallel.hpp): rank r of N trains the contiguous rows
// rank_rows(B, r, N) of a batch of B, and builds only those (EpochBatches::batch): the
// padding length and the count of targets, which take every row, need only the
// sequences' lengths.
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

// Rows [first, first + count) of a batch: those rank `rank` of `ranks` trains of a batch
// of `rows`, [rank rows / ranks, (rank + 1) rows / ranks) (count 0 when rows < ranks).
struct RowRange {
  std::size_t first = 0;
  std::size_t count = 0;
};
RowRange rank_rows(std::size_t rows, std::size_t rank, std::size_t ranks);

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

// The batches make_batches() makes, built one at a time when asked: whole, or a rank's
// rows of one. The order (the shuffle draws) is make_batches()'s, so batch b here and there
// are equal. Keeps a pointer to `sequences`, which must outlive it.
class EpochBatches {
 public:
  EpochBatches() = default;
  // As make_batches(): the same errors, the same one shuffle of the kept sequences.
  EpochBatches(const std::vector<std::vector<std::int32_t>>& sequences, std::size_t batch_size,
               std::size_t max_seq_len, std::int32_t pad_id, Rng* shuffle_rng = nullptr);

  std::size_t size() const { return (order_.size() + batch_size_ - 1) / batch_size_; }
  // Rows of batch b.
  std::size_t rows(std::size_t b) const;
  // Non-padding targets of the whole batch b (every rank's rows).
  std::size_t targets(std::size_t b) const;
  // Rows rank_rows(rows(b), rank, ranks) of batch b, padded to the whole batch's length:
  // exactly those rows of make_batches()'s batch b.
  Batch batch(std::size_t b, std::size_t rank = 0, std::size_t ranks = 1) const;

 private:
  const std::vector<std::vector<std::int32_t>>* sequences_ = nullptr;
  std::vector<std::size_t> order_;  // the kept sequences, in the epoch's order
  std::size_t batch_size_ = 1;
  std::int32_t pad_id_ = 0;
};

// How many sequences make_batches() keeps (those with at least 2 tokens).
std::size_t count_trainable(const std::vector<std::vector<std::int32_t>>& sequences);

}  // namespace strata
