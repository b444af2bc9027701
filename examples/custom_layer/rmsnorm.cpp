#include "rmsnorm.hpp"

#include <cmath>

#include "framework/registry.hpp"

namespace example {

template <class T>
strata::Schema RMSNorm<T>::schema() {
  return {strata::number_key("eps", "1e-6", "added to mean(x^2) before the square root (> 0)", 0)};
}

template <class T>
std::unique_ptr<Layer<T>> RMSNorm<T>::from_config(const strata::LayerConfig<T>& config) {
  const double eps = config.number("eps");
  if (!(eps > 0)) config.fail("eps", "must be > 0, got " + config.node("eps").scalar());
  // The schema has no dim: it is the input's feature size, known when the model is built.
  return std::make_unique<RMSNorm<T>>(config.name(), config.input_features("eps"), eps);
}

template <class T>
RMSNorm<T>::RMSNorm(std::string name, std::size_t dim, double eps)
    : Layer<T>(name, strata::Retains{.input = false, .output = false}),
      dim_(dim),
      eps_(eps),
      gamma_(strata::join_name(name, "gamma"), xt::ones<T>({dim})) {}

template <class T>
const Tensor<T>& RMSNorm<T>::forward(const Tensor<T>& x, Mode) {
  if (x.dimension() == 0 || x.shape().back() != dim_)
    throw strata::ShapeError(this->name() + ": expected input (..., " + std::to_string(dim_) + ")");
  const std::size_t rows = strata::leading_rows(x);
  // Buffers keep their size from step to step: no allocation after the first call.
  strata::ensure_shape(normalized_, x.shape());
  strata::ensure_shape(this->output_, x.shape());
  strata::ensure_shape(rrms_, std::vector<std::size_t>{rows});
  const T* g = gamma_.value.data();
  for (std::size_t r = 0; r < rows; ++r) {
    const T* xr = x.data() + r * dim_;
    T* nr = normalized_.data() + r * dim_;
    T* yr = this->output_.data() + r * dim_;
    double mean_square = 0;  // in double: float sums of squares lose digits for wide rows
    for (std::size_t i = 0; i < dim_; ++i) mean_square += double(xr[i]) * xr[i];
    mean_square /= double(dim_);
    const T rrms = T(1.0 / std::sqrt(mean_square + eps_));
    rrms_.data()[r] = rrms;
    for (std::size_t i = 0; i < dim_; ++i) {
      nr[i] = xr[i] * rrms;
      yr[i] = g[i] * nr[i];
    }
  }
  return this->output_;
}

template <class T>
const Tensor<T>& RMSNorm<T>::backward(const Tensor<T>& dy) {
  const std::size_t rows = rrms_.size();
  if (dy.size() != rows * dim_)
    throw strata::ShapeError(this->name() + ": gradient shape mismatch");
  strata::ensure_shape(this->input_grad_, normalized_.shape());
  const T* g = gamma_.value.data();
  T* dg = gamma_.grad.data();
  for (std::size_t r = 0; r < rows; ++r) {
    const T* dyr = dy.data() + r * dim_;
    const T* nr = normalized_.data() + r * dim_;
    T* dxr = this->input_grad_.data() + r * dim_;
    T sum_gn = 0;  // sum over the row of (dy * gamma) * xhat
    for (std::size_t i = 0; i < dim_; ++i) {
      dg[i] += dyr[i] * nr[i];  // ADD: the trainer zeroes grads once per step
      sum_gn += dyr[i] * g[i] * nr[i];
    }
    const T mean_gn = sum_gn / T(dim_);
    const T rrms = rrms_.data()[r];
    for (std::size_t i = 0; i < dim_; ++i) dxr[i] = rrms * (dyr[i] * g[i] - nr[i] * mean_gn);
  }
  return this->input_grad_;
}

template <class T>
Shape RMSNorm<T>::output_shape(const Shape& in) const {
  if (in.empty() || (in.back() != strata::kAnyDim && in.back() != std::int64_t(dim_)))
    throw strata::ShapeError("RMSNorm expects input (..., " + std::to_string(dim_) + "), got " +
                             strata::to_string(in));
  return in;
}

template class RMSNorm<float>;
template class RMSNorm<double>;

}  // namespace example

// The one line that makes "RMSNorm" usable in configs once this library is loaded.
STRATA_REGISTER_LAYER("RMSNorm", example::RMSNorm);
