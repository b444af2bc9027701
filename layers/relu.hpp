// ReLU: y = max(x, 0), element-wise.
//
// Shapes: any rank, y has x's shape. No parameters.
// Cached: the output y (y > 0 exactly where x > 0, so it doubles as the mask).
// Returns dx = dy where x > 0, else 0 (the derivative at the kink x = 0 is taken as 0,
// as torch does).
// Config: {type: ReLU}; no keys.
#pragma once

#include "framework/layer.hpp"
#include "framework/layer_config.hpp"

namespace strata {

template <class T>
class ReLU : public Layer<T> {
 public:
  static constexpr const char* kSummary = "rectified linear unit y = max(x, 0), element-wise";
  static constexpr const char* kExample = "{}";  // for the conformance checks
  static Shape example_input() { return {2, 3, 4}; }
  static Schema schema() { return {}; }
  static std::unique_ptr<Layer<T>> from_config(const LayerConfig<T>& config);
  // No parameters, the input's shape: the memory budget counts the layers after it.
  static std::uint64_t parameter_count(const LayerConfig<T>&) { return 0; }
  static Shape config_output_shape(const LayerConfig<T>& config) { return config.input_shape(); }

  explicit ReLU(std::string name);

  std::string_view type() const override { return "ReLU"; }
  const Tensor<T>& forward(const Tensor<T>& x, Mode mode) override;
  const Tensor<T>& backward(const Tensor<T>& dy) override;
  Shape output_shape(const Shape& in) const override { return in; }

 private:
};

}  // namespace strata
