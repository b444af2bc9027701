// A plugin for the tests (built as a MODULE, loaded with load_plugin / --plugin):
//   TestScale        y = factor * x, a correct layer
//   TestBrokenScale  the same forward with a backward that forgets the factor, so the
//                    gradient checks have something they must catch.
#include "framework/registry.hpp"

namespace {

using namespace strata;

template <class T, bool kBroken>
class Scale : public Layer<T> {
 public:
  static Schema schema() { return {number_key("factor", "2", "the constant multiplier")}; }
  static std::unique_ptr<Layer<T>> from_config(const LayerConfig<T>& config) {
    return std::make_unique<Scale>(config.name(), T(config.number("factor")));
  }
  Scale(std::string name, T factor) : Layer<T>(std::move(name)), factor_(factor) {}

  std::string_view type() const override { return kBroken ? "TestBrokenScale" : "TestScale"; }
  const Tensor<T>& forward(const Tensor<T>& x, Mode) override {
    ensure_shape(output_, x.shape());
    for (std::size_t i = 0; i < x.size(); ++i) output_.data()[i] = factor_ * x.data()[i];
    return output_;
  }
  const Tensor<T>& backward(const Tensor<T>& dy) override {
    ensure_shape(input_grad_, dy.shape());
    const T k = kBroken ? T(1) : factor_;
    for (std::size_t i = 0; i < dy.size(); ++i) input_grad_.data()[i] = k * dy.data()[i];
    return input_grad_;
  }
  Shape output_shape(const Shape& in) const override { return in; }

 private:
  T factor_;
  Tensor<T> output_, input_grad_;
};

template <class T>
struct TestScale : Scale<T, false> {
  static constexpr const char* kSummary = "test plugin: y = factor * x";
  using Scale<T, false>::Scale;
};
template <class T>
struct TestBrokenScale : Scale<T, true> {
  static constexpr const char* kSummary = "test plugin: y = factor * x with a wrong backward";
  using Scale<T, true>::Scale;
};

}  // namespace

STRATA_REGISTER_LAYER("TestScale", TestScale);
STRATA_REGISTER_LAYER("TestBrokenScale", TestBrokenScale);
