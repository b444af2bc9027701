// Embedding: RustGPT's token table plus a learned positional table.
//
//   y[b, s] = token[ids[b, s]] + position[start + s]
//
// Shapes: ids (batch, seq) -> y (batch, seq, dim). Ids travel as T values (exact in
// float up to 2^24); forward checks that each is an integer in [0, vocab) and that
// the positions fit in max_seq_len, throwing strata::Error naming the offender.
// Parameters: <name>.token (vocab, dim) and <name>.position (max_seq_len, dim), both
// N(0, init_std) (token table drawn first).
// Cached: the ids (as integers) and the start position of the last forward.
// Accumulates: scatter-add of dy into ONLY the rows used: token rows of the ids
// present (repeated ids accumulate) and position rows start..start+seq-1; every
// other row's gradient is left untouched.
// Returns: a zero tensor shaped like the ids. Ids are not differentiable; the zeros
// only keep the Layer contract (a layer before an Embedding gets no gradient).
// forward_step(x, start) embeds positions start..start+seq-1 (KV-cache decoding);
// reset_state() has nothing to reset.
// Config: {type: Embedding, dim: 128, init_std: 0.02}; vocab_size and max_seq_len come
// from the model context (the tokenizer and `model.max_seq_len`).
#pragma once

#include <vector>

#include "framework/layer.hpp"
#include "framework/layer_config.hpp"

namespace strata {

template <class T>
class Embedding : public Layer<T> {
 public:
  static constexpr const char* kSummary =
      "token embedding plus learned positional embedding: ids (batch, seq) -> (batch, seq, dim)";
  static constexpr const char* kExample = "{dim: 4}";  // for the conformance checks
  static Shape example_input() { return {2, 3}; }
  static constexpr bool kExampleIds = true;  // its input is token ids
  static Schema schema();
  static std::unique_ptr<Layer<T>> from_config(const LayerConfig<T>& config);
  // vocab * dim + max_seq_len * dim, from the config alone (the memory budget).
  static std::uint64_t parameter_count(const LayerConfig<T>& config);
  // (batch, seq, dim), from the config alone (the memory budget).
  static Shape config_output_shape(const LayerConfig<T>& config);

  Embedding(std::string name, std::size_t vocab, std::size_t dim, std::size_t max_seq_len,
            double init_std, Rng& rng);

  std::string_view type() const override { return "Embedding"; }
  const Tensor<T>& forward(const Tensor<T>& x, Mode mode) override;
  const Tensor<T>& backward(const Tensor<T>& dy) override;
  std::vector<Parameter<T>*> parameters() override;
  Shape output_shape(const Shape& in) const override;
  void reset_state() override {}
  const Tensor<T>& forward_step(const Tensor<T>& x, std::size_t start) override;

  Parameter<T>& token() { return token_; }
  Parameter<T>& position() { return position_; }
  std::size_t vocab() const { return vocab_; }
  std::size_t dim() const { return dim_; }
  std::size_t max_seq_len() const { return max_seq_len_; }

 private:
  const Tensor<T>& embed(const Tensor<T>& x, std::size_t start);

  std::size_t vocab_, dim_, max_seq_len_;
  Parameter<T> token_, position_;
  std::vector<std::size_t> ids_;  // last forward's ids, row-major (batch * seq)
  std::size_t batch_ = 0, seq_ = 0, start_ = 0;
};

}  // namespace strata
