// Residual: y = x + body(x), body being its `layers:` run in order (a Sequential).
//
// Shapes: the body must give x's shape back. y (and dx) are the base class's output_
// (input_grad_).
// Sublayers: the body's layers, named under the residual's name as in Sequential.
// Cached: what the body caches; the sum needs nothing (dx = dy + body'(dy)).
// Accumulates: the body's parameter grads. Keeps its input only if the body does.
// Used for pre-norm blocks (x + attn(ln(x))) and, around a layer without a residual
// of its own, post-norm ones (ln(x + attn(x))).
// Config: {type: Residual, layers: [{type: LayerNorm}, {type: SelfAttention, dim: D,
//          residual: false}]}.
#pragma once

#include "layers/sequential.hpp"

namespace strata {

template <class T>
class Residual : public Layer<T> {
 public:
  static constexpr const char* kSummary = "x + body(x), body = its `layers:` in order";
  static constexpr const char* kExample = "{layers: [{type: LayerNorm}, {type: Linear, out: 4}]}";
  static Shape example_input() { return {2, 3, 4}; }
  static Schema schema();
  static std::unique_ptr<Layer<T>> from_config(const LayerConfig<T>& config);
  // Its body's count from the config alone (the memory budget); kUncounted when a layer
  // of the body has none. The output keeps the input's shape.
  static std::uint64_t parameter_count(const LayerConfig<T>& config);
  static Shape config_output_shape(const LayerConfig<T>& config) { return config.input_shape(); }

  Residual(std::string name, std::unique_ptr<Layer<T>> body);

  std::string_view type() const override { return "Residual"; }
  const Tensor<T>& forward(const Tensor<T>& x, Mode mode) override;
  const Tensor<T>& backward(const Tensor<T>& dy) override;
  Shape output_shape(const Shape& in) const override;
  const Tensor<T>& forward_step(const Tensor<T>& x, std::size_t start) override;

  Layer<T>& body() { return *body_; }

 private:
  std::unique_ptr<Layer<T>> body_;
};

}  // namespace strata
