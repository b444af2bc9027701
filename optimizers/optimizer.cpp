#include "optimizers/optimizer.hpp"

#include <sstream>

#include "framework/text.hpp"
#include "optimizers/optimizer_registry.hpp"

namespace strata {

Schema optimizer_common_keys() {
  std::ostringstream default_lr;
  default_lr << kDefaultLearningRate;
  return {
      number_key("lr", default_lr.str(), "learning rate when a training phase gives none", 0),
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
  std::unique_ptr<Optimizer<T>> optimizer = info->template factory<T>()(section);
  if (!optimizer) throw Error("optimizer type \"" + type + "\": from_config returned nothing");
  // Here rather than in each from_config, so no optimizer can leave them out.
  optimizer->default_lr_ = section.number("lr");
  optimizer->clip_norm_ = section.number("clip_norm");
  return optimizer;
}

template std::unique_ptr<Optimizer<float>> make_optimizer<float>(const ConfigNode&);
template std::unique_ptr<Optimizer<double>> make_optimizer<double>(const ConfigNode&);

}  // namespace strata
