#include "layers/layer_norm.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <xsimd/xsimd.hpp>

#include "framework/parallel.hpp"

namespace strata {

template <class T>
Schema LayerNorm<T>::schema() {
  return {
      positive_number_key("eps", "1e-5", "added to the variance before the square root"),
  };
}

template <class T>
std::uint64_t LayerNorm<T>::parameter_count(const LayerConfig<T>& config) {
  return 2 * std::uint64_t(config.input_features("eps"));
}

template <class T>
std::unique_ptr<Layer<T>> LayerNorm<T>::from_config(const LayerConfig<T>& config) {
  const double eps = config.number("eps");
  // The schema's range is inclusive; eps = 0 would divide by zero on a constant row.
  if (!(eps > 0)) config.fail("eps", "must be > 0, got " + config.node("eps").scalar());
  return std::make_unique<LayerNorm<T>>(config.name(), config.input_features("eps"), eps);
}

template <class T>
LayerNorm<T>::LayerNorm(std::string name, std::size_t dim, double eps)
    : Layer<T>(name, Retains{false, false}),
      dim_(dim),
      eps_(eps),
      gamma_(join_name(name, "gamma"), xt::ones<T>({dim})),
      beta_(join_name(name, "beta"), xt::zeros<T>({dim})) {
  if (dim == 0) throw ShapeError(this->name() + ": LayerNorm needs dim >= 1");
  if (!(eps > 0)) throw Error(this->name() + ": LayerNorm needs eps > 0");
}

namespace {

// Forward's row sums (in double) in kLanes interleaved partial sums (element i goes to
// lane i % kLanes), combined in a fixed order at the end: the loops vectorise, where
// one running sum is a chain of dependent adds (~4 cycles per element), and the result
// depends on nothing but the row's length.
constexpr std::size_t kLanes = 16;

template <class Acc>
Acc combine_lanes(Acc (&lane)[kLanes]) {
  for (std::size_t width = kLanes / 2; width > 0; width /= 2)
    for (std::size_t j = 0; j < width; ++j) lane[j] += lane[j + width];
  return lane[0];
}

// The row's mean and variance in double, in two passes: the one-pass E[x^2] - E[x]^2
// loses digits when |mu| >> std.
template <class T>
void normalize_row(const T* x, T* xhat, T* y, T* rstd, const T* g, const T* b, std::size_t dim,
                   double eps) {
  double lane[kLanes] = {};
  std::size_t i = 0;
  for (; i + kLanes <= dim; i += kLanes)
    for (std::size_t j = 0; j < kLanes; ++j) lane[j] += double(x[i + j]);
  for (std::size_t j = 0; i < dim; ++i, ++j) lane[j] += double(x[i]);
  const double mean = combine_lanes(lane) / double(dim);
  std::fill(std::begin(lane), std::end(lane), 0.0);
  for (i = 0; i + kLanes <= dim; i += kLanes)
    for (std::size_t j = 0; j < kLanes; ++j) {
      const double d = double(x[i + j]) - mean;
      lane[j] += d * d;
    }
  for (std::size_t j = 0; i < dim; ++i, ++j) {
    const double d = double(x[i]) - mean;
    lane[j] += d * d;
  }
  const T s = T(1.0 / std::sqrt(combine_lanes(lane) / double(dim) + eps));
  *rstd = s;
  for (i = 0; i < dim; ++i) {
    xhat[i] = T(x[i] - mean) * s;
    y[i] = g[i] * xhat[i] + b[i];
  }
}

}  // namespace

template <class T>
const Tensor<T>& LayerNorm<T>::forward(const Tensor<T>& x, Mode) {
  if (x.dimension() == 0 || x.shape().back() != dim_)
    throw ShapeError(this->name() + ": expected input (..., " + std::to_string(dim_) + ")");
  const std::size_t rows = leading_rows(x);
  ensure_shape(normalized_, x.shape());
  ensure_shape(this->output_, x.shape());
  ensure_shape(rstd_, std::vector<std::size_t>{rows});
  const T* g = gamma_.value.data();
  const T* b = beta_.value.data();
  parallel_rows(rows, dim_, [&](std::size_t first, std::size_t last) {
    for (std::size_t r = first; r < last; ++r)
      normalize_row(x.data() + r * dim_, normalized_.data() + r * dim_,
                    this->output_.data() + r * dim_, rstd_.data() + r, g, b, dim_, eps_);
  });
  return this->output_;
}

template <class T>
const Tensor<T>& LayerNorm<T>::backward(const Tensor<T>& dy) {
  const std::size_t rows = rstd_.size();
  if (dy.size() != rows * dim_ || normalized_.size() != rows * dim_)
    throw ShapeError(this->name() + ": gradient shape mismatch");
  ensure_shape(this->input_grad_, normalized_.shape());
  const T* g = gamma_.value.data();
  T* dg = gamma_.grad.data();
  T* db = beta_.grad.data();
  const T inv_dim = T(1) / T(dim_);
  // dgamma and dbeta: column sums over the rows, in row order within each column, so
  // splitting by blocks of columns gives the same bits as one thread. A block is 64
  // columns: several whole cache lines of each row per task.
  constexpr std::size_t kColumnBlock = 64;
  auto sum_columns = [&](std::size_t block) {
    const std::size_t first = block * kColumnBlock, last = std::min(dim_, first + kColumnBlock);
    for (std::size_t r = 0; r < rows; ++r) {
      const T* dyr = dy.data() + r * dim_;
      const T* nr = normalized_.data() + r * dim_;
      for (std::size_t i = first; i < last; ++i) {
        dg[i] += dyr[i] * nr[i];
        db[i] += dyr[i];
      }
    }
  };
  const std::size_t column_blocks = (dim_ + kColumnBlock - 1) / kColumnBlock;
  if (rows * dim_ >= (std::size_t(1) << 16))
    parallel_for(column_blocks, sum_columns);
  else
    for (std::size_t block = 0; block < column_blocks; ++block) sum_columns(block);
  // dx: row by row, each row independent.
  parallel_rows(rows, dim_, [&](std::size_t first, std::size_t last) {
    for (std::size_t r = first; r < last; ++r) backward_row(r, dy.data(), g, inv_dim);
  });
  return this->input_grad_;
}

template <class T>
void LayerNorm<T>::backward_row(std::size_t r, const T* dy, const T* g, T inv_dim) {
  const T* dyr = dy + r * dim_;
  const T* nr = normalized_.data() + r * dim_;
  T* dxr = this->input_grad_.data() + r * dim_;
  // Sums of dxhat and dxhat * xhat over the row, in SIMD lanes (GCC turns plain lane
  // arrays here into shuffles), combined by xsimd's horizontal add.
  using Batch = xsimd::batch<T>;
  Batch lanes_g(T(0)), lanes_gn(T(0));
  std::size_t i = 0;
  for (; i + Batch::size <= dim_; i += Batch::size) {
    const Batch gi = Batch::load_unaligned(dyr + i) * Batch::load_unaligned(g + i);
    lanes_g += gi;
    lanes_gn += gi * Batch::load_unaligned(nr + i);
  }
  T sum_g = xsimd::hadd(lanes_g), sum_gn = xsimd::hadd(lanes_gn);
  for (; i < dim_; ++i) {
    const T gi = dyr[i] * g[i];
    sum_g += gi;
    sum_gn += gi * nr[i];
  }
  const T mean_g = sum_g * inv_dim, mean_gn = sum_gn * inv_dim;
  const T rstd = rstd_.data()[r];
  for (i = 0; i < dim_; ++i) dxr[i] = rstd * (dyr[i] * g[i] - mean_g - nr[i] * mean_gn);
}

template <class T>
std::vector<Parameter<T>*> LayerNorm<T>::parameters() {
  return {&gamma_, &beta_};
}

template <class T>
Shape LayerNorm<T>::output_shape(const Shape& in) const {
  if (in.empty() || (in.back() != kAnyDim && in.back() != std::int64_t(dim_)))
    throw ShapeError("LayerNorm expects input (..., " + std::to_string(dim_) + "), got " +
                     to_string(in));
  return in;
}

template class LayerNorm<float>;
template class LayerNorm<double>;

}  // namespace strata
