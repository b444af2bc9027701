// OutputProjection: logits over the vocabulary, y = x W + b, or with weight tying
// y = x E^T + b where E (vocab, dim) is an earlier Embedding's token table.
//
// Shapes: x (..., dim) -> y (..., vocab). Own W is (dim, vocab), He init N(0, 2/dim) as
// RustGPT's output layer; b is (vocab), zeros.
// Cached: a reference to x (see CachedInput in framework/layer.hpp).
// Accumulates: W.grad += x^T dy (tied: E.grad += dy^T x, added to the shared parameter,
// so the embedding's own gradient and this one simply sum), b.grad += column sums of dy.
// Returns dx = dy W^T (tied: dy E).
// parameters() lists the tied table too (Model lists each parameter once).
// Config: {type: OutputProjection, bias: true, tie: "", dim: 0}; vocab comes from the
// model (tokenizer or model.vocab_size), dim from the input (`dim`, if given, must match);
// `tie` is the full name of an earlier parameter, e.g. "embedding.token".
#pragma once

#include "framework/layer.hpp"
#include "framework/layer_config.hpp"

namespace strata {

template <class T>
class OutputProjection : public Layer<T> {
 public:
  static constexpr const char* kSummary =
      "logits over the vocabulary: x W + b, or x E^T + b tied to an embedding table";
  static constexpr const char* kExample = "{bias: true}";  // for the conformance checks
  static Shape example_input() { return {2, 3, 4}; }
  static Schema schema();
  static std::unique_ptr<Layer<T>> from_config(const LayerConfig<T>& config);
  // dim * vocab (nothing when tied) (+ vocab with bias), from the config alone.
  static std::uint64_t parameter_count(const LayerConfig<T>& config);
  // The input's shape with one score per token, from the config alone (the memory budget).
  static Shape config_output_shape(const LayerConfig<T>& config);

  // Own weight W (dim, vocab).
  OutputProjection(std::string name, std::size_t dim, std::size_t vocab, bool bias, Rng& rng);
  // Tied: `table` (vocab, dim) is shared, not owned; it must outlive this layer.
  OutputProjection(std::string name, Parameter<T>& table, bool bias);

  std::string_view type() const override { return "OutputProjection"; }
  const Tensor<T>& forward(const Tensor<T>& x, Mode mode) override;
  const Tensor<T>& backward(const Tensor<T>& dy) override;
  std::vector<Parameter<T>*> parameters() override;
  Shape output_shape(const Shape& in) const override;

  bool tied() const { return tied_ != nullptr; }

 private:
  std::size_t dim_, vocab_;
  std::unique_ptr<Parameter<T>> weight_;  // (dim, vocab); absent when tied
  Parameter<T>* tied_ = nullptr;          // (vocab, dim); owned by the embedding
  std::unique_ptr<Parameter<T>> bias_;
  CachedInput<T> input_;
};

}  // namespace strata
