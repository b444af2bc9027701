// A plugin for the tests that registers an optimizer and no layer (loaded with
// load_plugin / --plugin):
//   TestSignDescent  p <- p - lr * sign(g), no state.
#include <memory>

#include "optimizers/optimizer_registry.hpp"

namespace {

using namespace strata;

template <class T>
class SignDescent : public Optimizer<T> {
 public:
  static constexpr const char* kSummary = "test plugin: p -= lr * sign(g)";
  static Schema schema() { return {}; }
  static std::unique_ptr<Optimizer<T>> from_config(const ConfigSection&) {
    return std::make_unique<SignDescent>();
  }
  std::string_view type() const override { return "TestSignDescent"; }

 protected:
  void update(const std::vector<Parameter<T>*>& parameters, double lr) override {
    for (Parameter<T>* p : parameters)
      for (std::size_t i = 0; i < p->value.size(); ++i) {
        const T g = p->grad.data()[i];
        p->value.data()[i] -= T(lr) * T((g > 0) - (g < 0));
      }
  }
};

}  // namespace

STRATA_REGISTER_OPTIMIZER("TestSignDescent", SignDescent);
