// The Layer interface every layer implements (built-in, in-tree or plugin).
//
// A layer writes five things (the last two only when it needs them):
//  - type(): its registered type name.
//  - forward(x, mode): computes y from x, caches what backward needs, returns y. The
//    result is usually the base class's output_ buffer (reuse it: ensure_shape keeps
//    its allocation across steps); it stays valid until the next forward.
//  - backward(dy): takes dL/dy for the last forward's output and returns dL/dx
//    (usually the base's input_grad_ buffer). It ADDS dL/dtheta into every parameter's
//    grad: the trainer zeroes grads once per step, so weight tying and gradient
//    accumulation need no special code.
//  - parameters(): the layer's parameters with their full hierarchical names. The
//    default lists its children's (a composite writes nothing).
//  - output_shape(in): the output shape for an input shape (kAnyDim allowed), without
//    touching data, so a config is validated before any allocation; throws ShapeError
//    when the input does not fit.
//  - forward_step(x, start) / reset_state(): incremental decoding. x holds positions
//    [start, start + x.shape(1)) of one batch; the layer may use what it kept from
//    earlier positions since the last reset_state(). The default (a plain eval
//    forward; reset_state resets the children) is right for position-wise layers.
//
// Composites register their sublayers with add_child() (flashlight's Container):
// parameters(), random_generators() and reset_state() then recurse by default.
//
// Memory is the base class's business, not each layer's. A layer says once, in its
// constructor, what its backward reads (Retains): by default its input x, kept by
// reference (CachedInput below), and not its output. Whoever runs a chain of layers
// (framework/chain.hpp: the Model, Sequential, Residual) then calls release(t) on a
// buffer t the layer returned once nothing reads it any more; the base frees its
// output_/input_grad_ when large (release_if_large, framework/tensor.hpp), or passes
// the call to the child that returned t. Small models keep every buffer and never
// allocate per step.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "framework/parameter.hpp"
#include "framework/rng.hpp"
#include "framework/tensor.hpp"

namespace strata {

enum class Mode { train, eval };

struct ShapeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// What a layer's backward reads from its forward, beyond its own caches.
struct Retains {
  bool input = true;    // a reference to x (CachedInput): x's producer must keep it
  bool output = false;  // its own output_ (ReLU's mask is its output)
};

// The input of a layer's last forward, kept by reference for backward. get() refuses
// a backward without a forward, or after the tensor changed shape, with a ShapeError
// naming the layer.
template <class T>
class CachedInput {
 public:
  void set(const Tensor<T>& x) {
    x_ = &x;
    shape_ = x.shape();
  }
  const Tensor<T>& get(const std::string& layer) const {
    if (!x_) throw ShapeError(layer + ": backward called before forward");
    if (x_->shape() != shape_)
      throw ShapeError(layer + ": the input of the last forward changed before backward");
    return *x_;
  }

 private:
  const Tensor<T>* x_ = nullptr;
  typename Tensor<T>::shape_type shape_;
};

template <class T>
class Layer {
 public:
  explicit Layer(std::string name, Retains retains = {})
      : name_(std::move(name)), retains_(retains) {}
  virtual ~Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  virtual std::string_view type() const = 0;
  virtual const Tensor<T>& forward(const Tensor<T>& x, Mode mode) = 0;
  virtual const Tensor<T>& backward(const Tensor<T>& dy) = 0;
  virtual std::vector<Parameter<T>*> parameters() {
    std::vector<Parameter<T>*> out;
    for (Layer<T>* child : children_)
      for (Parameter<T>* p : child->parameters()) out.push_back(p);
    return out;
  }
  virtual Shape output_shape(const Shape& in) const = 0;

  virtual const Tensor<T>& forward_step(const Tensor<T>& x, std::size_t /*start*/) {
    return forward(x, Mode::eval);
  }
  virtual void reset_state() {
    for (Layer<T>* child : children_) child->reset_state();
  }

  // ---- Provided by the base --------------------------------------------------------
  const std::string& name() const { return name_; }
  const std::vector<Layer<T>*>& children() const { return children_; }
  // Generators drawn from while training (Dropout's masks), own then children's, in a
  // fixed order, so checkpoints save and restore them and a resumed run draws the same.
  void random_generators(std::vector<Rng*>& out) const {
    out.insert(out.end(), generators_.begin(), generators_.end());
    for (const Layer<T>* child : children_) child->random_generators(out);
  }
  // Whether forward keeps a reference to x for backward (x's producer must keep it).
  bool keeps_input() const { return retains_.input; }
  // t, a buffer this layer (or a descendant) returned, is dead for its caller. Returns
  // whether t was found (a buffer the layer did not make, e.g. its input passed
  // through, is left alone).
  bool release(const Tensor<T>& t) {
    if (&t == &output_) {
      if (!retains_.output) release_if_large(output_);
      return true;
    }
    if (&t == &input_grad_) {
      release_if_large(input_grad_);
      return true;
    }
    for (Layer<T>* child : children_)
      if (child->release(t)) return true;
    return false;
  }

 protected:
  void add_child(Layer<T>& child) { children_.push_back(&child); }
  void add_generator(Rng& rng) { generators_.push_back(&rng); }
  void set_retains(Retains retains) { retains_ = retains; }  // composites: from children

  Tensor<T> output_, input_grad_;  // forward's and backward's results, when the layer's own

 private:
  std::string name_;
  Retains retains_;
  std::vector<Layer<T>*> children_;
  std::vector<Rng*> generators_;
};

}  // namespace strata
