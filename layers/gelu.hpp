// GELU, tanh approximation (as GPT-2 and torch's gelu(approximate="tanh")):
//
//   y = 0.5 x (1 + tanh(u)),   u = sqrt(2/pi) (x + 0.044715 x^3)
//
// not the exact x * Phi(x) form (erf); the two differ by < 1e-3.
// Shapes: any rank, y has x's shape. No parameters.
// Cached: x and tanh(u) (so backward calls no transcendental function).
// Returns dx = dy * (0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)).
// Config: {type: GELU}; no keys.
#pragma once

#include "framework/layer.hpp"
#include "framework/layer_config.hpp"

namespace strata {

template <class T>
class GELU : public Layer<T> {
 public:
  static constexpr const char* kSummary =
      "Gaussian error linear unit, tanh approximation (GPT-2), element-wise";
  static constexpr const char* kExample = "{}";  // for the conformance checks
  static Shape example_input() { return {2, 3, 4}; }
  static Schema schema() { return {}; }
  static std::unique_ptr<Layer<T>> from_config(const LayerConfig<T>& config);
  // No parameters, the input's shape: the memory budget counts the layers after it.
  static std::uint64_t parameter_count(const LayerConfig<T>&) { return 0; }
  static Shape config_output_shape(const LayerConfig<T>& config) { return config.input_shape(); }

  explicit GELU(std::string name);

  std::string_view type() const override { return "GELU"; }
  const Tensor<T>& forward(const Tensor<T>& x, Mode mode) override;
  const Tensor<T>& backward(const Tensor<T>& dy) override;
  Shape output_shape(const Shape& in) const override { return in; }

 private:
  Tensor<T> input_, tanh_;
};

}  // namespace strata
