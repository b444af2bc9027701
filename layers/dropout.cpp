#include "layers/dropout.hpp"

#include <limits>

namespace strata {

template <class T>
Schema Dropout<T>::schema() {
  return {
      number_key("rate", "0.1", "probability of zeroing an element in training, in [0, 1)", 0, 1),
  };
}

template <class T>
std::unique_ptr<Layer<T>> Dropout<T>::from_config(const LayerConfig<T>& config) {
  const double rate = config.number("rate");
  // The schema's range is inclusive; rate 1 would scale by 1/0.
  if (!(rate < 1)) config.fail("rate", "must be < 1, got " + config.node("rate").scalar());
  return std::make_unique<Dropout<T>>(config.name(), rate, config.rng());
}

template <class T>
Dropout<T>::Dropout(std::string name, double rate, Rng& rng)
    : Layer<T>(std::move(name), Retains{false, false}),
      rate_(rate),
      // One draw from the run's Rng (almost always one engine step: below() rejects
      // only the single value 2^64 - 1).
      mask_rng_(rng.below(std::numeric_limits<std::uint64_t>::max())) {
  this->add_generator(mask_rng_);  // checkpointed with the run's other generators
  if (!(rate >= 0 && rate < 1))
    throw Error(this->name() + ": Dropout rate must be in [0, 1), got " + std::to_string(rate));
}

template <class T>
const Tensor<T>& Dropout<T>::forward(const Tensor<T>& x, Mode mode) {
  ensure_shape(mask_, x.shape());
  ensure_shape(this->output_, x.shape());
  const std::size_t n = x.size();
  const T* in = x.data();
  T* m = mask_.data();
  T* y = this->output_.data();
  if (mode == Mode::eval || rate_ == 0) {
    // No draws: eval consumes no randomness, so evaluating mid-training does not shift
    // the training masks.
    std::fill(m, m + n, T(1));
    std::copy(in, in + n, y);
    return this->output_;
  }
  const T scale = T(1.0 / (1.0 - rate_));
  for (std::size_t i = 0; i < n; ++i) {
    m[i] = mask_rng_.uniform() < rate_ ? T(0) : scale;
    y[i] = in[i] * m[i];
  }
  return this->output_;
}

template <class T>
const Tensor<T>& Dropout<T>::backward(const Tensor<T>& dy) {
  if (dy.size() != mask_.size()) throw ShapeError(this->name() + ": gradient shape mismatch");
  ensure_shape(this->input_grad_, mask_.shape());
  const T* m = mask_.data();
  const T* g = dy.data();
  T* dx = this->input_grad_.data();
  for (std::size_t i = 0, n = dy.size(); i < n; ++i) dx[i] = g[i] * m[i];
  return this->input_grad_;
}

template class Dropout<float>;
template class Dropout<double>;

}  // namespace strata
