// LayerNorm: normalise over the last axis, then scale and shift (torch semantics).
//
//   y = gamma * (x - mu) / sqrt(var + eps) + beta,   var biased (divides by dim).
//
// Shapes: x (..., dim) -> y (..., dim); gamma and beta are (dim).
// Parameters: <name>.gamma (ones), <name>.beta (zeros).
// Cached: the normalised input xhat (..., dim) and 1/sqrt(var + eps) per row; that is
// all backward needs (x itself is not kept).
// Accumulates: gamma.grad += sum over rows of dy * xhat, beta.grad += sum of dy.
// Returns dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma.
// Config: {type: LayerNorm, eps: 1e-5}; dim comes from the input's last axis.
// Note: RustGPT's original divides by (std + eps); Strata follows torch, as the
// reference restatement (shared/bench/torch_reference.py) does.
#pragma once

#include "framework/layer.hpp"
#include "framework/layer_config.hpp"

namespace strata {

template <class T>
class LayerNorm : public Layer<T> {
 public:
  static constexpr const char* kSummary =
      "layer normalisation over the last axis with learned gamma, beta (torch semantics)";
  static constexpr const char* kExample = "{}";  // for the conformance checks
  static Shape example_input() { return {2, 3, 4}; }
  static Schema schema();
  static std::unique_ptr<Layer<T>> from_config(const LayerConfig<T>& config);
  // 2 * dim (gamma, beta), from the config alone (the memory budget).
  static std::uint64_t parameter_count(const LayerConfig<T>& config);
  // Its output keeps the input's shape (the memory budget counts the layers after it).
  static Shape config_output_shape(const LayerConfig<T>& config) { return config.input_shape(); }

  LayerNorm(std::string name, std::size_t dim, double eps = 1e-5);

  std::string_view type() const override { return "LayerNorm"; }
  const Tensor<T>& forward(const Tensor<T>& x, Mode mode) override;
  const Tensor<T>& backward(const Tensor<T>& dy) override;
  std::vector<Parameter<T>*> parameters() override;
  Shape output_shape(const Shape& in) const override;

  Parameter<T>& gamma() { return gamma_; }
  Parameter<T>& beta() { return beta_; }
  double eps() const { return eps_; }

 private:
  // dx for row r of the last backward (dgamma, dbeta are summed separately).
  void backward_row(std::size_t r, const T* dy, const T* g, T inv_dim);

  std::size_t dim_;
  double eps_;
  Parameter<T> gamma_, beta_;
  Tensor<T> normalized_, rstd_;
};

}  // namespace strata
