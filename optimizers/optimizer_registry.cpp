#include "optimizers/optimizer_registry.hpp"

namespace strata {

OptimizerRegistry& optimizer_registry() {
  static OptimizerRegistry* registry = [] {
    auto* r = new OptimizerRegistry("optimizer");  // never destroyed: plugins may outlive statics
    register_builtin_optimizers(*r);
    return r;
  }();
  return *registry;
}

}  // namespace strata
