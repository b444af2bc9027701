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

std::vector<Batch> make_batches(const std::vector<std::vector<std::int32_t>>& sequences,
                                std::size_t batch_size, std::size_t max_seq_len,
                                std::int32_t pad_id, Rng* shuffle_rng) {
  if (batch_size == 0) throw Error("batch size must be at least 1");
  if (pad_id < 0) throw Error("pad id must be non-negative, got " + std::to_string(pad_id));

  std::vector<std::size_t> order;
  order.reserve(sequences.size());
  for (std::size_t i = 0; i < sequences.size(); ++i) {
    const std::size_t n = sequences[i].size();
    if (n > max_seq_len + 1)
      throw Error("sequence " + std::to_string(i) + " has " + std::to_string(n) +
                  " tokens; at most max_seq_len + 1 = " + std::to_string(max_seq_len + 1) +
                  " fit (its inputs are all but the last token)");
    if (n >= 2) order.push_back(i);
  }
  if (shuffle_rng != nullptr) shuffle_rng->shuffle(order.begin(), order.end());

  std::vector<Batch> batches;
  batches.reserve((order.size() + batch_size - 1) / batch_size);
  for (std::size_t first = 0; first < order.size(); first += batch_size) {
    const std::size_t rows = std::min(batch_size, order.size() - first);
    Batch b;
    b.batch = rows;
    for (std::size_t r = 0; r < rows; ++r)
      b.length = std::max(b.length, sequences[order[first + r]].size() - 1);
    b.inputs.assign(rows * b.length, pad_id);
    b.targets.assign(rows * b.length, kIgnore);
    for (std::size_t r = 0; r < rows; ++r) {
      const auto& s = sequences[order[first + r]];
      std::copy(s.begin(), s.end() - 1, b.inputs.begin() + r * b.length);
      std::copy(s.begin() + 1, s.end(), b.targets.begin() + r * b.length);
    }
    batches.push_back(std::move(b));
  }
  return batches;
}

}  // namespace strata
