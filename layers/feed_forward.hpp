// FeedForward: the transformer's position-wise MLP, y = fc2(act(fc1(x))) (+ x).
//
// Shapes: x (..., dim) -> h (..., hidden) -> y (..., dim).
// Sublayers: Linear <name>.fc1 (dim -> hidden, bias, He init N(0, 2/dim)), an activation
// <name>.act (ReLU or GELU), Linear <name>.fc2 (hidden -> dim, bias, He init
// N(0, 2/hidden)); as RustGPT's FFN (torch_reference.py Block: f = y + fc2(relu(fc1(y)))).
// Parameters: <name>.fc1.weight/.bias, <name>.fc2.weight/.bias.
// Cached: what the sublayers cache; the residual needs nothing more. Its sum x + mlp(x)
// is the base class's output_ (and dx + dy its input_grad_).
// Accumulates: the sublayers' parameter grads. Returns dx = fc1'(act'(fc2'(dy))) (+ dy).
// Config: {type: FeedForward, dim: D, hidden: H, activation: relu, residual: true};
// dim must equal the input's features.
#pragma once

#include <array>

#include "framework/chain.hpp"
#include "framework/layer_config.hpp"
#include "layers/linear.hpp"

namespace strata {

enum class Activation { relu, gelu };
Activation parse_activation(const std::string& name);  // "relu" | "gelu"

template <class T>
class FeedForward : public Layer<T> {
 public:
  static constexpr const char* kSummary =
      "position-wise MLP: Linear(dim->hidden), ReLU/GELU, Linear(hidden->dim), + residual";
  static constexpr const char* kExample =
      "{dim: 4, hidden: 6, activation: gelu}";  // for the conformance checks
  static Shape example_input() { return {2, 3, 4}; }
  static Schema schema();
  static std::unique_ptr<Layer<T>> from_config(const LayerConfig<T>& config);
  // 2 * dim * hidden + hidden + dim, from the config alone (the memory budget).
  static std::uint64_t parameter_count(const LayerConfig<T>& config);
  static std::uint64_t parameter_count(std::uint64_t dim, std::uint64_t hidden);
  // Its output keeps the input's shape (the memory budget counts the layers after it).
  static Shape config_output_shape(const LayerConfig<T>& config) { return config.input_shape(); }

  FeedForward(std::string name, std::size_t dim, std::size_t hidden, Activation activation,
              bool residual, Rng& rng);

  std::string_view type() const override { return "FeedForward"; }
  const Tensor<T>& forward(const Tensor<T>& x, Mode mode) override;
  const Tensor<T>& backward(const Tensor<T>& dy) override;
  Shape output_shape(const Shape& in) const override;

 private:
  std::array<Layer<T>*, 3> chain() const { return {fc1_.get(), act_.get(), fc2_.get()}; }

  std::size_t dim_;
  bool residual_;
  std::unique_ptr<Linear<T>> fc1_;
  std::unique_ptr<Layer<T>> act_;
  std::unique_ptr<Linear<T>> fc2_;
};

}  // namespace strata
