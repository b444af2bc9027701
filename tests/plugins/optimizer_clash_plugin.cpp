// A plugin for the tests whose first optimizer takes a built-in's name ("SGD"): loading
// it must report the clash (no std::terminate in the static initialiser); its other
// optimizer, TestClashFreeOptimizer, registers as usual.
#include <memory>

#include "optimizers/optimizer_registry.hpp"

namespace {

using namespace strata;

template <class T>
class Frozen : public Optimizer<T> {
 public:
  static constexpr const char* kSummary = "test plugin: leaves every parameter as it is";
  static Schema schema() { return {}; }
  static std::unique_ptr<Optimizer<T>> from_config(const ConfigSection&) {
    return std::make_unique<Frozen>();
  }
  std::string_view type() const override { return "Frozen"; }

 protected:
  void update(const std::vector<Parameter<T>*>&, double) override {}
};

}  // namespace

STRATA_REGISTER_OPTIMIZER("SGD", Frozen);
STRATA_REGISTER_OPTIMIZER("TestClashFreeOptimizer", Frozen);
