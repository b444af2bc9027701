#include "layers/gelu.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <xsimd/xsimd.hpp>

#include "framework/parallel.hpp"

namespace strata {

namespace {
constexpr double kSqrt2OverPi = std::numbers::sqrt2 * std::numbers::inv_sqrtpi;  // sqrt(2/pi)
constexpr double kCubic = 0.044715;

// t = tanh(u(x)) and y = 0.5 x (1 + t) for one batch of lanes.
template <class Batch>
void gelu_batch(const Batch& x, Batch& t, Batch& y) {
  using T = typename Batch::value_type;
  const Batch u = Batch(T(kSqrt2OverPi)) * (x + Batch(T(kCubic)) * x * x * x);
  t = xsimd::tanh(u);
  y = Batch(T(0.5)) * x * (Batch(T(1)) + t);
}

// gelu_batch over x[0, n), in SIMD batches: a scalar libm tanh per element cost as much
// as a fifth of a GELU model's training step. xsimd's tanh is within a few ulp of
// std::tanh. A tail shorter than a batch goes through a zero-padded batch, so each value
// is computed the same way wherever it sits in the tensor. Double (gradient checks)
// keeps the plain formula below, the definition the float path is tested against.
void gelu_forward(const float* x, std::size_t n, float* t, float* y) {
  using T = float;
  using Batch = xsimd::batch<T>;
  constexpr std::size_t kWidth = Batch::size;
  Batch tb, yb;
  std::size_t i = 0;
  for (; i + kWidth <= n; i += kWidth) {
    gelu_batch(Batch::load_unaligned(x + i), tb, yb);
    tb.store_unaligned(t + i);
    yb.store_unaligned(y + i);
  }
  if (i == n) return;
  alignas(64) T lane[kWidth] = {};
  std::copy(x + i, x + n, lane);
  gelu_batch(Batch::load_aligned(lane), tb, yb);
  tb.store_aligned(lane);
  std::copy(lane, lane + (n - i), t + i);
  yb.store_aligned(lane);
  std::copy(lane, lane + (n - i), y + i);
}

void gelu_forward(const double* x, std::size_t n, double* t, double* y) {
  for (std::size_t i = 0; i < n; ++i) {
    t[i] = std::tanh(kSqrt2OverPi * (x[i] + kCubic * x[i] * x[i] * x[i]));
    y[i] = 0.5 * x[i] * (1 + t[i]);
  }
}
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
  T *cached = input_.data(), *t = tanh_.data(), *y = this->output_.data();
  // On the pool in blocks: gelu_forward computes each value alike wherever it sits.
  parallel_rows(x.size(), 1, [&](std::size_t first, std::size_t last) {
    std::copy(in + first, in + last, cached + first);
    gelu_forward(in + first, last - first, t + first, y + first);
  });
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
  parallel_rows(dy.size(), 1, [&](std::size_t first, std::size_t last) {
    for (std::size_t i = first; i < last; ++i) {
      const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kCubic) * x[i] * x[i]);
      dx[i] = g[i] * (T(0.5) * (T(1) + t[i]) + T(0.5) * x[i] * (T(1) - t[i] * t[i]) * du);
    }
  });
  return this->input_grad_;
}

template class GELU<float>;
template class GELU<double>;

}  // namespace strata
