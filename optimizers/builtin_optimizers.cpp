// The one list of built-in optimizers, registered on first use of the registry.
#include "optimizers/adam.hpp"
#include "optimizers/adamw.hpp"
#include "optimizers/optimizer_registry.hpp"
#include "optimizers/sgd.hpp"

namespace strata {

void register_builtin_optimizers(OptimizerRegistry& registry) {
  registry.add(make_optimizer_info<Adam>("Adam"));
  registry.add(make_optimizer_info<AdamW>("AdamW"));
  registry.add(make_optimizer_info<SGD>("SGD"));
}

}  // namespace strata
