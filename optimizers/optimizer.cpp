#include "optimizers/optimizer.hpp"

#include "framework/registry.hpp"
#include "framework/text.hpp"

namespace strata {

Schema optimizer_common_keys(const std::string& default_lr) {
  return {
      number_key("lr", default_lr, "learning rate when a training phase gives none", 0),
      // In every schema (not an extra key) so that it is validated and listed with
      // the others; the trainer reads it through Optimizer::clip_norm().
      number_key("clip_norm", "0", "clip the global gradient L2 norm to this; 0 = off", 0),
  };
}

template <class T>
std::unique_ptr<Optimizer<T>> make_optimizer(const ConfigNode& node) {
  const std::string where = "optimizer";
  if (!node.is_map()) throw ConfigError(node.mark(), where, "expected a mapping with a \"type\"");
  const ConfigNode type_node = node.get("type");
  if (!type_node.is_scalar())
    throw ConfigError(node.mark(), where,
                      "missing required key \"type\" (an optimizer type name; known types: " +
                          join(optimizer_registry().names(), ", ") + ")");
  const std::string type = type_node.scalar();
  const OptimizerInfo* info = nullptr;
  try {
    info = &optimizer_registry().find(type);
  } catch (const UnknownName& e) {
    throw ConfigError(type_node.mark(), where, e.what());
  }
  const ConfigSection section(node, where + " (" + type + ")", info->schema, {"type"});
  return info->template factory<T>()(section);
}

template std::unique_ptr<Optimizer<float>> make_optimizer<float>(const ConfigNode&);
template std::unique_ptr<Optimizer<double>> make_optimizer<double>(const ConfigNode&);

}  // namespace strata
