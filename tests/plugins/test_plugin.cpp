// A plugin for the tests (built as a MODULE, loaded with load_plugin / --plugin):
//   TestScale        y = factor * x, a correct layer
//   TestBrokenScale  the same forward with a backward that forgets the factor, so the
//                    gradient checks have something they must catch.
//   TestOverwriteScale  y = s * x with a learned s whose backward OVERWRITES s.grad
//                    instead of adding to it: right gradients, wrong accumulation, which
//                    the checkers' backward-twice check must catch.
//   SwiGLU           the gated feed-forward y = (silu(x W1) * (x W3)) W2, a correct
//                    layer for a TransformerBlock's ffn: slot (issue 10).
#include <cmath>

#include "framework/blas.hpp"
#include "framework/init.hpp"
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

// SwiGLU: y = (silu(x W1) * (x W3)) W2, no bias, no residual (the block adds it).
// Shapes: x (..., dim) -> a = x W1, b = x W3 (..., hidden) -> y (..., dim); dim is the
// input's feature size. Parameters <name>.w1 (dim, hidden), .w3 (dim, hidden), .w2
// (hidden, dim), Xavier init. Cached: x (by reference), a, b and g = silu(a) * b.
// Accumulates dW1 = x^T da, dW3 = x^T db, dW2 = g^T dy; returns dx = da W1^T + db W3^T.
template <class T>
class SwiGLU : public Layer<T> {
 public:
  static constexpr const char* kSummary = "test plugin: gated MLP (silu(x W1) * x W3) W2";
  static constexpr const char* kExample = "{hidden: 5}";
  static Shape example_input() { return {2, 3, 4}; }
  static Schema schema() {
    return {integer_key("hidden", kRequired, "width of the gated hidden layer", 1, 1 << 20)};
  }
  static std::uint64_t parameter_count(const LayerConfig<T>& config) {
    return 3 * std::uint64_t(config.input_features("hidden")) *
           std::uint64_t(config.integer("hidden"));
  }
  static Shape config_output_shape(const LayerConfig<T>& config) { return config.input_shape(); }
  static std::unique_ptr<Layer<T>> from_config(const LayerConfig<T>& config) {
    return std::make_unique<SwiGLU>(config.name(), std::size_t(config.input_features("hidden")),
                                    std::size_t(config.integer("hidden")), config.rng());
  }
  SwiGLU(std::string name, std::size_t dim, std::size_t hidden, Rng& rng)
      : Layer<T>(name),
        dim_(dim),
        hidden_(hidden),
        w1_(join_name(name, "w1"), Tensor<T>::from_shape({dim, hidden})),
        w3_(join_name(name, "w3"), Tensor<T>::from_shape({dim, hidden})),
        w2_(join_name(name, "w2"), Tensor<T>::from_shape({hidden, dim})) {
    fill_init(w1_.value, Init::xavier, dim, hidden, rng);
    fill_init(w3_.value, Init::xavier, dim, hidden, rng);
    fill_init(w2_.value, Init::xavier, hidden, dim, rng);
  }

  std::string_view type() const override { return "SwiGLU"; }
  const Tensor<T>& forward(const Tensor<T>& x, Mode) override {
    output_shape(Shape(x.shape().begin(), x.shape().end()));
    input_.set(x);
    const std::size_t n = x.size() / dim_;
    a_.assign(n * hidden_, T(0));
    b_.assign(n * hidden_, T(0));
    g_.resize(n * hidden_);
    gemm(false, false, n, hidden_, dim_, T(1), x.data(), w1_.value.data(), T(0), a_.data());
    gemm(false, false, n, hidden_, dim_, T(1), x.data(), w3_.value.data(), T(0), b_.data());
    for (std::size_t i = 0; i < g_.size(); ++i) g_[i] = silu(a_[i]) * b_[i];
    ensure_shape(this->output_, x.shape());
    gemm(false, false, n, dim_, hidden_, T(1), g_.data(), w2_.value.data(), T(0),
         this->output_.data());
    return this->output_;
  }
  const Tensor<T>& backward(const Tensor<T>& dy) override {
    const Tensor<T>& x = input_.get(this->name());
    const std::size_t n = x.size() / dim_;
    std::vector<T> dg(n * hidden_), da(n * hidden_), db(n * hidden_);
    gemm(false, true, n, hidden_, dim_, T(1), dy.data(), w2_.value.data(), T(0), dg.data());
    gemm(true, false, hidden_, dim_, n, T(1), g_.data(), dy.data(), T(1), w2_.grad.data());
    for (std::size_t i = 0; i < dg.size(); ++i) {
      const T s = T(1) / (T(1) + std::exp(-a_[i]));
      da[i] = dg[i] * b_[i] * s * (T(1) + a_[i] * (T(1) - s));  // silu'(a)
      db[i] = dg[i] * a_[i] * s;
    }
    gemm(true, false, dim_, hidden_, n, T(1), x.data(), da.data(), T(1), w1_.grad.data());
    gemm(true, false, dim_, hidden_, n, T(1), x.data(), db.data(), T(1), w3_.grad.data());
    ensure_shape(this->input_grad_, x.shape());
    gemm(false, true, n, dim_, hidden_, T(1), da.data(), w1_.value.data(), T(0),
         this->input_grad_.data());
    gemm(false, true, n, dim_, hidden_, T(1), db.data(), w3_.value.data(), T(1),
         this->input_grad_.data());
    return this->input_grad_;
  }
  std::vector<Parameter<T>*> parameters() override { return {&w1_, &w3_, &w2_}; }
  Shape output_shape(const Shape& in) const override {
    if (in.empty() || (in.back() != kAnyDim && in.back() != std::int64_t(dim_)))
      throw ShapeError("SwiGLU expects input (..., " + std::to_string(dim_) + "), got " +
                       to_string(in));
    return in;
  }

 private:
  static T silu(T a) { return a / (T(1) + std::exp(-a)); }

  std::size_t dim_, hidden_;
  Parameter<T> w1_, w3_, w2_;
  CachedInput<T> input_;
  std::vector<T> a_, b_, g_;  // x W1, x W3, silu(a) * b, for backward
};

}  // namespace

STRATA_REGISTER_LAYER("TestScale", TestScale);
STRATA_REGISTER_LAYER("TestBrokenScale", TestBrokenScale);
STRATA_REGISTER_LAYER("TestOverwriteScale", TestOverwriteScale);
STRATA_REGISTER_LAYER("SwiGLU", SwiGLU);
