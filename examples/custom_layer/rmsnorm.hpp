// RMSNorm: root-mean-square normalisation over the last axis with a learned scale
// (Zhang & Sennrich 2019; torch.nn.RMSNorm semantics):
//
//   y = gamma * x / rms(x),   rms(x) = sqrt(mean(x^2) + eps)
//
// Shapes: x (..., dim) -> y (..., dim); gamma is (dim).
// Parameters: <name>.gamma (ones).
// Cached: the normalised input xhat = x / rms(x) (..., dim) and 1/rms(x) per row; not
// x itself, nor y (declared once in the constructor, so Strata may free them).
// Accumulates: gamma.grad += sum over rows of dy * xhat.
// Returns dx = (g - xhat * mean(g * xhat)) / rms(x), with g = dy * gamma.
// Config: {type: RMSNorm, eps: 1e-6}; dim comes from the input's last axis.
#pragma once

#include "framework/layer.hpp"
#include "framework/layer_config.hpp"

namespace example {

using strata::Layer;
using strata::Mode;
using strata::Parameter;
using strata::Shape;
using strata::Tensor;

template <class T>
class RMSNorm : public Layer<T> {
 public:
  static constexpr const char* kSummary =
      "root-mean-square normalisation over the last axis with a learned gamma";
  static constexpr const char* kExample = "{eps: 1e-5}";  // for `strata check-layer`
  static Shape example_input() { return {2, 3, 4}; }
  static strata::Schema schema();
  static std::unique_ptr<Layer<T>> from_config(const strata::LayerConfig<T>& config);

  RMSNorm(std::string name, std::size_t dim, double eps = 1e-6);

  std::string_view type() const override { return "RMSNorm"; }
  const Tensor<T>& forward(const Tensor<T>& x, Mode mode) override;
  const Tensor<T>& backward(const Tensor<T>& dy) override;
  std::vector<Parameter<T>*> parameters() override { return {&gamma_}; }
  Shape output_shape(const Shape& in) const override;

  Parameter<T>& gamma() { return gamma_; }

 private:
  std::size_t dim_;
  double eps_;
  Parameter<T> gamma_;
  Tensor<T> normalized_, rrms_;  // y and dx are the base class's output_ and input_grad_
};

}  // namespace example
