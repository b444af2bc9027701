#include "layers/feed_forward.hpp"

#include "layers/gelu.hpp"
#include "layers/relu.hpp"

namespace strata {

Activation parse_activation(const std::string& name) {
  if (name == "relu") return Activation::relu;
  if (name == "gelu") return Activation::gelu;
  throw Error("unknown activation \"" + name + "\" (expected relu or gelu)");
}

template <class T>
Schema FeedForward<T>::schema() {
  return {
      integer_key("dim", kRequired, "model width; must equal the input's feature size", 1, 1 << 16),
      integer_key("hidden", kRequired, "width of the hidden layer", 1, 1 << 20),
      string_key("activation", "relu", "nonlinearity between the two Linear layers",
                 {"relu", "gelu"}),
      boolean_key("residual", "true", "return x + mlp(x) instead of mlp(x)"),
  };
}

template <class T>
std::uint64_t FeedForward<T>::parameter_count(std::uint64_t dim, std::uint64_t hidden) {
  return dim * hidden + hidden + hidden * dim + dim;  // fc1 and fc2 with their biases
}

template <class T>
std::uint64_t FeedForward<T>::parameter_count(const LayerConfig<T>& config) {
  return parameter_count(std::uint64_t(config.integer("dim")),
                         std::uint64_t(config.integer("hidden")));
}

template <class T>
std::unique_ptr<Layer<T>> FeedForward<T>::from_config(const LayerConfig<T>& config) {
  const std::int64_t dim = config.matching_features("dim");
  return std::make_unique<FeedForward<T>>(
      config.name(), std::size_t(dim), std::size_t(config.integer("hidden")),
      parse_activation(config.string("activation")), config.boolean("residual"), config.rng());
}

template <class T>
FeedForward<T>::FeedForward(std::string name, std::size_t dim, std::size_t hidden,
                            Activation activation, bool residual, Rng& rng)
    : Layer<T>(name), dim_(dim), residual_(residual) {
  // Built in data-flow order so the weights are drawn fc1 first, then fc2 (as RustGPT).
  fc1_ = std::make_unique<Linear<T>>(join_name(name, "fc1"), dim, hidden, true, Init::he, rng);
  if (activation == Activation::gelu)
    act_ = std::make_unique<GELU<T>>(join_name(name, "act"));
  else
    act_ = std::make_unique<ReLU<T>>(join_name(name, "act"));
  fc2_ = std::make_unique<Linear<T>>(join_name(name, "fc2"), hidden, dim, true, Init::he, rng);
  for (Layer<T>* layer : chain()) this->add_child(*layer);
}

template <class T>
const Tensor<T>& FeedForward<T>::forward(const Tensor<T>& x, Mode mode) {
  const Tensor<T>& y = forward_chain(chain(), x, mode);
  if (!residual_) return y;
  add_into(this->output_, y, x);
  fc2_->release(y);
  return this->output_;
}

template <class T>
const Tensor<T>& FeedForward<T>::backward(const Tensor<T>& dy) {
  const Tensor<T>& dx = backward_chain(chain(), dy);
  if (!residual_) return dx;
  add_into(this->input_grad_, dx, dy);
  fc1_->release(dx);
  return this->input_grad_;
}

template <class T>
Shape FeedForward<T>::output_shape(const Shape& in) const {
  if (in.empty() || (in.back() != kAnyDim && in.back() != std::int64_t(dim_)))
    throw ShapeError("FeedForward expects input (..., " + std::to_string(dim_) + "), got " +
                     to_string(in));
  return in;
}

template class FeedForward<float>;
template class FeedForward<double>;

}  // namespace strata
