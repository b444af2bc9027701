#include "layers/sequential.hpp"

#include "framework/registry.hpp"

namespace strata {

template <class T>
Schema Sequential<T>::schema() {
  return {sequence_key("layers", kRequired, "the layers, in order (entries as in model.layers)")};
}

template <class T>
std::unique_ptr<Layer<T>> Sequential<T>::from_config(const LayerConfig<T>& config) {
  auto sequential = std::make_unique<Sequential<T>>(config.name());
  for (auto& layer : build_sublayers(config, "layers")) sequential->add(std::move(layer));
  return sequential;
}

template <class T>
std::uint64_t Sequential<T>::parameter_count(const LayerConfig<T>& config) {
  Shape out;
  return sublayers_parameter_count(config, "layers", out);
}

template <class T>
Shape Sequential<T>::config_output_shape(const LayerConfig<T>& config) {
  Shape out;
  if (sublayers_parameter_count(config, "layers", out) == kUncounted)
    throw ShapeError("Sequential " + config.name() + ": a layer in it has no shape rule");
  return out;
}

template <class T>
Sequential<T>::Sequential(std::string name) : Layer<T>(std::move(name)) {}

template <class T>
void Sequential<T>::add(std::unique_ptr<Layer<T>> layer) {
  this->add_child(*layer);
  layers_.push_back(std::move(layer));
  this->set_retains({layers_.front()->keeps_input(), false});
}

template <class T>
const Tensor<T>& Sequential<T>::forward(const Tensor<T>& x, Mode mode) {
  return forward_chain(layers_, x, mode);
}

template <class T>
const Tensor<T>& Sequential<T>::backward(const Tensor<T>& dy) {
  return backward_chain(layers_, dy);
}

template <class T>
const Tensor<T>& Sequential<T>::forward_step(const Tensor<T>& x, std::size_t start) {
  return step_chain(layers_, x, start);
}

template <class T>
Shape Sequential<T>::output_shape(const Shape& in) const {
  Shape shape = in;
  for (const auto& layer : layers_) shape = layer->output_shape(shape);
  return shape;
}

template class Sequential<float>;
template class Sequential<double>;

}  // namespace strata
