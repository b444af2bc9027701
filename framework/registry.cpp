#include "framework/registry.hpp"

namespace strata {

LayerRegistry& layer_registry() {
  static LayerRegistry* registry = [] {
    auto* r = new LayerRegistry("layer");  // never destroyed: plugins may outlive statics
    register_builtin_layers(*r);
    return r;
  }();
  return *registry;
}

RegistrationLog& registration_log() {
  static RegistrationLog log;
  return log;
}

bool register_layer_at_load(LayerInfo info) {
  return add_at_load(layer_registry(), std::move(info));
}

}  // namespace strata
