// The optimizer registry: optimizers created by type name from an `optimizer:` mapping,
// as layers are from the layer registry (framework/registry.hpp).
//
// Built-in optimizers are registered by register_builtin_optimizers(), which
// optimizer_registry() calls on first use. Others, in the tree or in a plugin library,
// register with one line:
//
//   STRATA_REGISTER_OPTIMIZER("Lion", Lion);   // Lion is a class template on T
//
// which needs Lion<T>::kSummary, Lion<T>::schema() (its own keys: `lr` and `clip_norm`
// are every optimizer's and are added here) and
// Lion<T>::from_config(const ConfigSection&). Registering a name twice is an error
// (recorded for the plugin loader, never thrown from a static initialiser); asking for
// an unknown name lists the known ones and suggests the nearest.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "framework/registry.hpp"
#include "optimizers/optimizer.hpp"

namespace strata {

template <class T>
using OptimizerFactory = std::function<std::unique_ptr<Optimizer<T>>(const ConfigSection&)>;

struct OptimizerInfo {
  std::string type;
  std::string summary;
  Schema schema;  // optimizer_common_keys() first, then the optimizer's own
  OptimizerFactory<float> make_float;
  OptimizerFactory<double> make_double;
  std::string origin = "built-in";  // or the plugin library's path

  template <class T>
  const OptimizerFactory<T>& factory() const {
    if constexpr (std::is_same_v<T, float>)
      return make_float;
    else
      return make_double;
  }
};

using OptimizerRegistry = Registry<OptimizerInfo>;

// The process-wide registry (built-ins registered on first use).
OptimizerRegistry& optimizer_registry();
void register_builtin_optimizers(OptimizerRegistry& registry);  // builtin_optimizers.cpp

template <template <class> class O>
OptimizerInfo make_optimizer_info(std::string type) {
  OptimizerInfo info;
  info.type = std::move(type);
  info.summary = O<float>::kSummary;
  info.schema = optimizer_common_keys();
  for (KeySpec& key : O<float>::schema()) {
    if (key.name == "lr" || key.name == "clip_norm")
      throw Error("schema() lists \"" + key.name + "\", which every optimizer has already");
    info.schema.push_back(std::move(key));
  }
  info.make_float = [](const ConfigSection& c) { return O<float>::from_config(c); };
  info.make_double = [](const ConfigSection& c) { return O<double>::from_config(c); };
  return info;
}

// What STRATA_REGISTER_OPTIMIZER calls: adds to optimizer_registry() with the loading
// library as origin; a failure (a clash, a schema() that throws) goes to
// registration_log() instead of ending the process.
template <template <class> class O>
bool register_optimizer_at_load(const char* type) noexcept {
  return register_at_load("optimizer", type, [&] {
    return add_at_load(optimizer_registry(), make_optimizer_info<O>(type));
  });
}

}  // namespace strata

#define STRATA_REGISTER_OPTIMIZER(TYPE_NAME, CLASS_TEMPLATE)                                 \
  static const bool STRATA_CONCAT(strata_optimizer_registered_, __LINE__) [[maybe_unused]] = \
      ::strata::register_optimizer_at_load<CLASS_TEMPLATE>(TYPE_NAME)
