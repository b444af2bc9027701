#include "framework/registry.hpp"

#include "framework/text.hpp"

namespace strata {

template <class Info>
std::string Registry<Info>::did_you_mean_(const std::string& type) const {
  return did_you_mean(type, names());
}

template <class Info>
std::string Registry<Info>::join_(const std::vector<std::string>& names) {
  return join(names, ", ");
}

template class Registry<LayerInfo>;
template class Registry<OptimizerInfo>;

LayerRegistry& layer_registry() {
  static LayerRegistry* registry = [] {
    auto* r = new LayerRegistry("layer");  // never destroyed: plugins may outlive statics
    register_builtin_layers(*r);
    return r;
  }();
  return *registry;
}

OptimizerRegistry& optimizer_registry() {
  static OptimizerRegistry* registry = [] {
    auto* r = new OptimizerRegistry("optimizer");
    register_builtin_optimizers(*r);
    return r;
  }();
  return *registry;
}

RegistrationLog& registration_log() {
  static RegistrationLog log;
  return log;
}

bool register_layer_at_load(LayerInfo info) {
  try {
    if (!registration_log().origin.empty()) info.origin = registration_log().origin;
    layer_registry().add(std::move(info));
    ++registration_log().registered;
    return true;
  } catch (const std::exception& e) {
    registration_log().errors.push_back(e.what());
    return false;
  }
}

}  // namespace strata
