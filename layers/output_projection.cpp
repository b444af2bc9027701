#include "layers/output_projection.hpp"

#include <algorithm>
#include <cmath>

#include "framework/init.hpp"
#include "layers/linear.hpp"

namespace strata {

template <class T>
Schema OutputProjection<T>::schema() {
  return {
      boolean_key("bias", "true", "add a learned bias per vocabulary entry"),
      string_key("tie", "",
                 "full name of an earlier (vocab, dim) parameter to share as the weight, "
                 "e.g. \"embedding.token\" (logits = x E^T); empty: own weight"),
      integer_key("dim", "0", "input features (0: from the input; if given it must match)", 0,
                  1 << 16),
  };
}

template <class T>
std::uint64_t OutputProjection<T>::parameter_count(const LayerConfig<T>& config) {
  const auto vocab = std::uint64_t(std::max<std::int64_t>(config.model().vocab_size, 0));
  const std::uint64_t bias = config.boolean("bias") ? vocab : 0;
  if (!config.string("tie").empty()) return bias;  // the table belongs to the Embedding
  return std::uint64_t(config.input_features("dim")) * vocab + bias;
}

template <class T>
Shape OutputProjection<T>::config_output_shape(const LayerConfig<T>& config) {
  Shape out = config.input_shape();
  config.input_features("dim");  // fails on an input without a known feature size
  out.back() = config.model().vocab_size;
  return out;
}

template <class T>
std::unique_ptr<Layer<T>> OutputProjection<T>::from_config(const LayerConfig<T>& config) {
  const std::int64_t dim = config.input_features("dim");
  if (config.integer("dim") != 0 && config.integer("dim") != dim)
    config.fail("dim", "shapes do not chain: dim is " + std::to_string(config.integer("dim")) +
                           " but the input has " + std::to_string(dim) + " features " +
                           to_string(config.input_shape()));
  const std::int64_t vocab = config.model().vocab_size;
  if (vocab <= 0)
    config.fail("type",
                "needs the vocabulary size, which is 0: build a tokenizer first or set "
                "model.vocab_size");
  const std::string tie = config.string("tie");
  if (tie.empty())
    return std::make_unique<OutputProjection<T>>(
        config.name(), std::size_t(dim), std::size_t(vocab), config.boolean("bias"), config.rng());
  Parameter<T>* table = config.find_parameter(tie);
  if (!table)
    config.fail("tie", "no earlier layer has a parameter named \"" + tie +
                           "\" (give a full name such as \"embedding.token\")");
  const auto& shape = table->value.shape();
  if (table->value.dimension() != 2 || shape[0] != std::size_t(vocab) ||
      shape[1] != std::size_t(dim))
    config.fail("tie", "parameter \"" + tie + "\" has shape " +
                           to_string(Shape(shape.begin(), shape.end())) + ", expected (" +
                           std::to_string(vocab) + ", " + std::to_string(dim) + ") = (vocab, dim)");
  return std::make_unique<OutputProjection<T>>(config.name(), *table, config.boolean("bias"));
}

template <class T>
OutputProjection<T>::OutputProjection(std::string name, std::size_t dim, std::size_t vocab,
                                      bool bias, Rng& rng)
    : Layer<T>(name),
      dim_(dim),
      vocab_(vocab),
      weight_(std::make_unique<Parameter<T>>(join_name(name, "weight"),
                                             Tensor<T>::from_shape({dim, vocab}))) {
  fill_init(weight_->value, Init::he, dim, vocab, rng);
  if (bias) bias_ = std::make_unique<Parameter<T>>(join_name(name, "bias"), xt::zeros<T>({vocab}));
}

template <class T>
OutputProjection<T>::OutputProjection(std::string name, Parameter<T>& table, bool bias)
    : Layer<T>(name),
      dim_(table.value.dimension() == 2 ? table.value.shape()[1] : 0),
      vocab_(table.value.dimension() == 2 ? table.value.shape()[0] : 0),
      tied_(&table) {
  if (table.value.dimension() != 2)
    throw ShapeError(this->name() + ": tied parameter " + table.name +
                     " must be a (vocab, dim) matrix");
  if (bias) bias_ = std::make_unique<Parameter<T>>(join_name(name, "bias"), xt::zeros<T>({vocab_}));
}

template <class T>
const Tensor<T>& OutputProjection<T>::forward(const Tensor<T>& x, Mode) {
  if (x.dimension() == 0 || x.shape().back() != dim_)
    throw ShapeError(this->name() + ": expected input (..., " + std::to_string(dim_) + ")");
  input_.set(x);
  auto out_shape = x.shape();
  out_shape.back() = vocab_;
  ensure_shape(this->output_, out_shape);
  affine_forward(x.data(), leading_rows(x), dim_, vocab_, tied_ ? *tied_ : *weight_,
                 tied_ != nullptr, bias_.get(), this->output_.data());
  return this->output_;
}

template <class T>
const Tensor<T>& OutputProjection<T>::backward(const Tensor<T>& dy) {
  const Tensor<T>& input = input_.get(this->name());
  const std::size_t rows = leading_rows(input);
  if (dy.size() != rows * vocab_) throw ShapeError(this->name() + ": gradient shape mismatch");
  ensure_shape(this->input_grad_, input.shape());
  affine_backward(input.data(), dy.data(), rows, dim_, vocab_, tied_ ? *tied_ : *weight_,
                  tied_ != nullptr, bias_.get(), this->input_grad_.data());
  return this->input_grad_;
}

template <class T>
std::vector<Parameter<T>*> OutputProjection<T>::parameters() {
  std::vector<Parameter<T>*> out{tied_ ? tied_ : weight_.get()};
  if (bias_) out.push_back(bias_.get());
  return out;
}

template <class T>
Shape OutputProjection<T>::output_shape(const Shape& in) const {
  if (in.empty() || (in.back() != kAnyDim && in.back() != std::int64_t(dim_)))
    throw ShapeError("OutputProjection expects input (..., " + std::to_string(dim_) + "), got " +
                     to_string(in));
  Shape out = in;
  out.back() = std::int64_t(vocab_);
  return out;
}

template class OutputProjection<float>;
template class OutputProjection<double>;

}  // namespace strata
