#include "layers/relu.hpp"

namespace strata {

template <class T>
std::unique_ptr<Layer<T>> ReLU<T>::from_config(const LayerConfig<T>& config) {
  return std::make_unique<ReLU<T>>(config.name());
}

template <class T>
ReLU<T>::ReLU(std::string name) : Layer<T>(std::move(name), Retains{false, true}) {}

template <class T>
const Tensor<T>& ReLU<T>::forward(const Tensor<T>& x, Mode) {
  ensure_shape(this->output_, x.shape());
  const T* in = x.data();
  T* y = this->output_.data();
  for (std::size_t i = 0, n = x.size(); i < n; ++i) y[i] = in[i] > T(0) ? in[i] : T(0);
  return this->output_;
}

template <class T>
const Tensor<T>& ReLU<T>::backward(const Tensor<T>& dy) {
  if (dy.size() != this->output_.size())
    throw ShapeError(this->name() + ": gradient shape mismatch");
  ensure_shape(this->input_grad_, this->output_.shape());
  const T* y = this->output_.data();
  const T* g = dy.data();
  T* dx = this->input_grad_.data();
  for (std::size_t i = 0, n = dy.size(); i < n; ++i) dx[i] = y[i] > T(0) ? g[i] : T(0);
  return this->input_grad_;
}

template class ReLU<float>;
template class ReLU<double>;

}  // namespace strata
