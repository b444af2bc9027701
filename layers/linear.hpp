// Linear: y = x W + b over the last axis.
//
// Shapes: x (..., in) -> y (..., out); W is (in, out), b is (out).
// Cached: a reference to x (needed for dW; see CachedInput in framework/layer.hpp).
// Accumulates: W.grad += x^T dy, b.grad += column sums of dy. Returns dx = dy W^T.
// Config: {type: Linear, out: N, bias: true, init: he}; `in` comes from the input.
#pragma once

#include "framework/init.hpp"
#include "framework/layer.hpp"
#include "framework/layer_config.hpp"

namespace strata {

template <class T>
class Linear : public Layer<T> {
 public:
  static constexpr const char* kSummary = "affine map y = x W + b over the last axis";
  static constexpr const char* kExample = "{out: 3}";  // for the conformance checks
  static Shape example_input() { return {2, 3, 4}; }
  static Schema schema();
  static std::unique_ptr<Layer<T>> from_config(const LayerConfig<T>& config);
  // in * out (+ out with bias), from the config alone (the memory budget).
  static std::uint64_t parameter_count(const LayerConfig<T>& config);
  // The input's shape with `out` features, from the config alone (the memory budget).
  static Shape config_output_shape(const LayerConfig<T>& config);

  Linear(std::string name, std::size_t in, std::size_t out, bool bias, Init init, Rng& rng);

  std::string_view type() const override { return "Linear"; }
  const Tensor<T>& forward(const Tensor<T>& x, Mode mode) override;
  const Tensor<T>& backward(const Tensor<T>& dy) override;
  std::vector<Parameter<T>*> parameters() override;
  Shape output_shape(const Shape& in) const override;

  Parameter<T>& weight() { return weight_; }

 private:
  std::size_t in_, out_;
  Parameter<T> weight_;
  std::unique_ptr<Parameter<T>> bias_;  // absent with bias: false
  CachedInput<T> input_;
};

// The affine map shared by Linear and OutputProjection, on row-major buffers:
// y (rows, out) = x (rows, in) W + b, with W stored (in, out), or stored (out, in) and
// used through a transpose flag when `transposed` (a tied embedding table).
template <class T>
void affine_forward(const T* x, std::size_t rows, std::size_t in, std::size_t out,
                    const Parameter<T>& w, bool transposed, const Parameter<T>* b, T* y);
// Adds dW and db into w.grad and b->grad and writes dx (rows, in); the parameter
// gradients and dx are independent products, run side by side on the thread pool.
template <class T>
void affine_backward(const T* x, const T* dy, std::size_t rows, std::size_t in, std::size_t out,
                     Parameter<T>& w, bool transposed, Parameter<T>* b, T* dx);

}  // namespace strata
