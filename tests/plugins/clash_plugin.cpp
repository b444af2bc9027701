// A plugin for the tests whose first layer takes a built-in's name ("Linear"): loading
// it must report the clash (no std::terminate in the static initialiser); its other
// layer, TestClashFree, registers as usual.
#include "framework/registry.hpp"

namespace {

using namespace strata;

template <class T>
class Identity : public Layer<T> {
 public:
  static constexpr const char* kSummary = "test plugin: y = x";
  static Schema schema() { return {}; }
  static std::unique_ptr<Layer<T>> from_config(const LayerConfig<T>& config) {
    return std::make_unique<Identity>(config.name());
  }
  explicit Identity(std::string name) : Layer<T>(std::move(name)) {}
  std::string_view type() const override { return "Identity"; }
  const Tensor<T>& forward(const Tensor<T>& x, Mode) override { return output_ = x; }
  const Tensor<T>& backward(const Tensor<T>& dy) override { return input_grad_ = dy; }
  Shape output_shape(const Shape& in) const override { return in; }

 private:
  Tensor<T> output_, input_grad_;
};

}  // namespace

STRATA_REGISTER_LAYER("Linear", Identity);
STRATA_REGISTER_LAYER("TestClashFree", Identity);
