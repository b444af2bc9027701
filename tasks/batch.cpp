#include "tasks/batch.hpp"

#include <algorithm>
#include <string>

#include "framework/errors.hpp"
#include "framework/loss.hpp"
#include "framework/rng.hpp"

namespace strata {

std::size_t count_trainable(const std::vector<std::vector<std::int32_t>>& sequences) {
  return static_cast<std::size_t>(std::count_if(sequences.begin(), sequences.end(),
                                                [](const auto& s) { return s.size() >= 2; }));
}

RowRange rank_rows(std::size_t rows, std::size_t rank, std::size_t ranks) {
  const std::size_t first = rank * rows / ranks;
  return {first, (rank + 1) * rows / ranks - first};
}

EpochBatches::EpochBatches(const std::vector<std::vector<std::int32_t>>& sequences,
                           std::size_t batch_size, std::size_t max_seq_len, std::int32_t pad_id,
                           Rng* shuffle_rng)
    : sequences_(&sequences), batch_size_(batch_size), pad_id_(pad_id) {
  if (batch_size == 0) throw Error("batch size must be at least 1");
  if (pad_id < 0) throw Error("pad id must be non-negative, got " + std::to_string(pad_id));
  order_.reserve(sequences.size());
  for (std::size_t i = 0; i < sequences.size(); ++i) {
    const std::size_t n = sequences[i].size();
    if (n > max_seq_len + 1)
      throw Error("sequence " + std::to_string(i) + " has " + std::to_string(n) +
                  " tokens; at most max_seq_len + 1 = " + std::to_string(max_seq_len + 1) +
                  " fit (its inputs are all but the last token)");
    if (n >= 2) order_.push_back(i);
  }
  if (shuffle_rng != nullptr) shuffle_rng->shuffle(order_.begin(), order_.end());
}

std::size_t EpochBatches::rows(std::size_t b) const {
  return std::min(batch_size_, order_.size() - b * batch_size_);
}

std::size_t EpochBatches::targets(std::size_t b) const {
  std::size_t n = 0;
  for (std::size_t r = 0; r < rows(b); ++r)
    n += (*sequences_)[order_[b * batch_size_ + r]].size() - 1;
  return n;
}

Batch EpochBatches::batch(std::size_t b, std::size_t rank, std::size_t ranks) const {
  const std::size_t first = b * batch_size_, all = rows(b);
  const RowRange mine = rank_rows(all, rank, ranks);
  const auto sequence = [&](std::size_t r) -> const std::vector<std::int32_t>& {
    return (*sequences_)[order_[first + r]];
  };
  Batch out;
  out.batch = mine.count;
  for (std::size_t r = 0; r < all; ++r)  // the whole batch's: as one process pads it
    out.length = std::max(out.length, sequence(r).size() - 1);
  out.inputs.assign(mine.count * out.length, pad_id_);
  out.targets.assign(mine.count * out.length, kIgnore);
  for (std::size_t r = 0; r < mine.count; ++r) {
    const auto& s = sequence(mine.first + r);
    std::copy(s.begin(), s.end() - 1, out.inputs.begin() + std::ptrdiff_t(r * out.length));
    std::copy(s.begin() + 1, s.end(), out.targets.begin() + std::ptrdiff_t(r * out.length));
  }
  return out;
}

std::vector<Batch> make_batches(const std::vector<std::vector<std::int32_t>>& sequences,
                                std::size_t batch_size, std::size_t max_seq_len,
                                std::int32_t pad_id, Rng* shuffle_rng) {
  const EpochBatches epoch(sequences, batch_size, max_seq_len, pad_id, shuffle_rng);
  std::vector<Batch> batches;
  batches.reserve(epoch.size());
  for (std::size_t b = 0; b < epoch.size(); ++b) batches.push_back(epoch.batch(b));
  return batches;
}

}  // namespace strata
