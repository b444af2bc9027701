// The one list of built-in optimizers, registered on first use of the registry.
#include "framework/registry.hpp"
#include "optimizers/optimizer.hpp"

namespace strata {

void register_builtin_optimizers(OptimizerRegistry& /*registry*/) {}

}  // namespace strata
