// Sequential: its layers in order, y = f_n(... f_2(f_1(x))).
//
// Shapes: each layer gets the previous one's output; y is the last one's.
// Sublayers: <name>.<layer name> for each entry of `layers:` (a layer's name defaults
// to its type in snake_case; `repeat: N` expands an entry into <entry>.0 ... .N-1), built
// and initialised in order. Parameters, generators and decoding state are the layers'.
// Cached: what the layers cache. Accumulates: every layer's parameter grads.
// Memory: runs the layers through forward_chain/backward_chain (framework/chain.hpp),
// so each intermediate buffer is freed as soon as nothing reads it.
// Config: {type: Sequential, layers: [{type: LayerNorm}, {type: Linear, out: 8}, ...]}.
#pragma once

#include "framework/chain.hpp"
#include "framework/layer_config.hpp"

namespace strata {

template <class T>
class Sequential : public Layer<T> {
 public:
  static constexpr const char* kSummary = "its layers in order (a `layers:` list, nestable)";
  static constexpr const char* kExample = "{layers: [{type: Linear, out: 5}, {type: GELU}]}";
  static Shape example_input() { return {2, 3, 4}; }
  static Schema schema();
  static std::unique_ptr<Layer<T>> from_config(const LayerConfig<T>& config);
  // Its layers' counts and chained shapes, from the config alone (the memory budget);
  // kUncounted (and a ShapeError for the shape) when one of them has no count.
  static std::uint64_t parameter_count(const LayerConfig<T>& config);
  static Shape config_output_shape(const LayerConfig<T>& config);

  explicit Sequential(std::string name);
  // Appends a layer; the first one decides whether the chain keeps its input.
  void add(std::unique_ptr<Layer<T>> layer);
  const std::vector<std::unique_ptr<Layer<T>>>& layers() const { return layers_; }

  std::string_view type() const override { return "Sequential"; }
  const Tensor<T>& forward(const Tensor<T>& x, Mode mode) override;
  const Tensor<T>& backward(const Tensor<T>& dy) override;
  Shape output_shape(const Shape& in) const override;
  const Tensor<T>& forward_step(const Tensor<T>& x, std::size_t start) override;

 private:
  std::vector<std::unique_ptr<Layer<T>>> layers_;
};

}  // namespace strata
