// A plugin for the tests (built as a MODULE, loaded with load_plugin / --plugin):
//   TestScale        y = factor * x, a correct layer
//   TestBrokenScale  the same forward with a backward that forgets the factor, so the
//                    gradient checks have something they must catch.
//   TestOverwriteScale  y = s * x with a learned s whose backward OVERWRITES s.grad
//                    instead of adding to it: right gradients, wrong accumulation, which
//                    the checkers' backward-twice check must catch.
#include "framework/registry.hpp"

namespace {

using namespace strata;

template <class T, bool kBroken>
class Scale : public Layer<T> {
 public:
  static Schema schema() { return {number_key("factor", "2", "the constant multiplier")}; }
  static constexpr const char* kExample = "{factor: 3}";
  static Shape example_input() { return {2, 3, 4}; }
  static std::unique_ptr<Layer<T>> from_config(const LayerConfig<T>& config) {
    return std::make_unique<Scale>(config.name(), T(config.number("factor")));
  }
  Scale(std::string name, T factor)
      : Layer<T>(std::move(name), Retains{false, false}), factor_(factor) {}

  std::string_view type() const override { return kBroken ? "TestBrokenScale" : "TestScale"; }
  const Tensor<T>& forward(const Tensor<T>& x, Mode) override {
    ensure_shape(this->output_, x.shape());
    for (std::size_t i = 0; i < x.size(); ++i) this->output_.data()[i] = factor_ * x.data()[i];
    return this->output_;
  }
  const Tensor<T>& backward(const Tensor<T>& dy) override {
    ensure_shape(this->input_grad_, dy.shape());
    const T k = kBroken ? T(1) : factor_;
    for (std::size_t i = 0; i < dy.size(); ++i) this->input_grad_.data()[i] = k * dy.data()[i];
    return this->input_grad_;
  }
  Shape output_shape(const Shape& in) const override { return in; }

 private:
  T factor_;
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

// y = s * x, s learned (initialised to 1.5); backward sets s.grad = sum(dy * x) where it
// must add it.
template <class T>
class TestOverwriteScale : public Layer<T> {
 public:
  static constexpr const char* kSummary = "test plugin: y = s * x, backward overwrites s.grad";
  static constexpr const char* kExample = "{}";
  static Shape example_input() { return {2, 3, 4}; }
  static Schema schema() { return {}; }
  static std::unique_ptr<Layer<T>> from_config(const LayerConfig<T>& config) {
    return std::make_unique<TestOverwriteScale>(config.name());
  }
  explicit TestOverwriteScale(std::string name)
      : Layer<T>(name), s_(join_name(name, "s"), Tensor<T>::from_shape({1})) {
    s_.value(0) = T(1.5);
  }

  std::string_view type() const override { return "TestOverwriteScale"; }
  const Tensor<T>& forward(const Tensor<T>& x, Mode) override {
    input_.set(x);
    ensure_shape(this->output_, x.shape());
    for (std::size_t i = 0; i < x.size(); ++i) this->output_.data()[i] = s_.value(0) * x.data()[i];
    return this->output_;
  }
  const Tensor<T>& backward(const Tensor<T>& dy) override {
    const Tensor<T>& x = input_.get(this->name());
    ensure_shape(this->input_grad_, dy.shape());
    T sum = 0;
    for (std::size_t i = 0; i < dy.size(); ++i) {
      sum += dy.data()[i] * x.data()[i];
      this->input_grad_.data()[i] = s_.value(0) * dy.data()[i];
    }
    s_.grad(0) = sum;  // the bug under test: must be +=
    return this->input_grad_;
  }
  std::vector<Parameter<T>*> parameters() override { return {&s_}; }
  Shape output_shape(const Shape& in) const override { return in; }

 private:
  Parameter<T> s_;
  CachedInput<T> input_;
};

}  // namespace

STRATA_REGISTER_LAYER("TestScale", TestScale);
STRATA_REGISTER_LAYER("TestBrokenScale", TestBrokenScale);
STRATA_REGISTER_LAYER("TestOverwriteScale", TestOverwriteScale);
