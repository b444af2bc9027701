#include "layers/residual.hpp"

#include "framework/registry.hpp"

namespace strata {

template <class T>
Schema Residual<T>::schema() {
  return {sequence_key("layers", kRequired, "the body, in order; must keep the input's shape")};
}

template <class T>
std::uint64_t Residual<T>::parameter_count(const LayerConfig<T>& config) {
  Shape out;
  return sublayers_parameter_count(config, "layers", out);
}

template <class T>
std::unique_ptr<Layer<T>> Residual<T>::from_config(const LayerConfig<T>& config) {
  auto body = Sequential<T>::from_config(config);  // same name: no extra level
  return std::make_unique<Residual<T>>(config.name(), std::move(body));
}

template <class T>
Residual<T>::Residual(std::string name, std::unique_ptr<Layer<T>> body)
    : Layer<T>(std::move(name)), body_(std::move(body)) {
  this->add_child(*body_);
  this->set_retains({body_->keeps_input(), false});  // x + ... needs nothing in backward
}

template <class T>
const Tensor<T>& Residual<T>::forward(const Tensor<T>& x, Mode mode) {
  const Tensor<T>& branch = body_->forward(x, mode);
  add_into(this->output_, x, branch);
  body_->release(branch);  // dead once added
  return this->output_;
}

template <class T>
const Tensor<T>& Residual<T>::backward(const Tensor<T>& dy) {
  const Tensor<T>& branch = body_->backward(dy);
  add_into(this->input_grad_, dy, branch);
  body_->release(branch);
  return this->input_grad_;
}

template <class T>
const Tensor<T>& Residual<T>::forward_step(const Tensor<T>& x, std::size_t start) {
  add_into(this->output_, x, body_->forward_step(x, start));
  return this->output_;
}

template <class T>
Shape Residual<T>::output_shape(const Shape& in) const {
  const Shape out = body_->output_shape(in);
  bool same = out.size() == in.size();
  for (std::size_t i = 0; same && i < in.size(); ++i)
    same = out[i] == in[i] || out[i] == kAnyDim || in[i] == kAnyDim;
  if (!same)
    throw ShapeError("Residual " + this->name() + ": the body maps " + to_string(in) + " to " +
                     to_string(out) + "; x + body(x) needs the same shape");
  return in;
}

template class Residual<float>;
template class Residual<double>;

}  // namespace strata
