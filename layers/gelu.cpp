#include "layers/gelu.hpp"

#include <cmath>
#include <numbers>

namespace strata {

namespace {
constexpr double kSqrt2OverPi = std::numbers::sqrt2 * std::numbers::inv_sqrtpi;  // sqrt(2/pi)
constexpr double kCubic = 0.044715;
}  // namespace

template <class T>
std::unique_ptr<Layer<T>> GELU<T>::from_config(const LayerConfig<T>& config) {
  return std::make_unique<GELU<T>>(config.name());
}

template <class T>
GELU<T>::GELU(std::string name) : Layer<T>(std::move(name), Retains{false, false}) {}

template <class T>
const Tensor<T>& GELU<T>::forward(const Tensor<T>& x, Mode) {
  ensure_shape(input_, x.shape());
  ensure_shape(tanh_, x.shape());
  ensure_shape(this->output_, x.shape());
  const T* in = x.data();
  T* xc = input_.data();
  T* t = tanh_.data();
  T* y = this->output_.data();
  for (std::size_t i = 0, n = x.size(); i < n; ++i) {
    const T v = in[i];
    xc[i] = v;
    t[i] = std::tanh(T(kSqrt2OverPi) * (v + T(kCubic) * v * v * v));
    y[i] = T(0.5) * v * (T(1) + t[i]);
  }
  return this->output_;
}

template <class T>
const Tensor<T>& GELU<T>::backward(const Tensor<T>& dy) {
  if (dy.size() != input_.size()) throw ShapeError(this->name() + ": gradient shape mismatch");
  ensure_shape(this->input_grad_, input_.shape());
  const T* x = input_.data();
  const T* t = tanh_.data();
  const T* g = dy.data();
  T* dx = this->input_grad_.data();
  for (std::size_t i = 0, n = dy.size(); i < n; ++i) {
    const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kCubic) * x[i] * x[i]);
    dx[i] = g[i] * (T(0.5) * (T(1) + t[i]) + T(0.5) * x[i] * (T(1) - t[i] * t[i]) * du);
  }
  return this->input_grad_;
}

template class GELU<float>;
template class GELU<double>;

}  // namespace strata
