// The Layer interface every layer implements (built-in, in-tree or plugin).
//
// Contract:
//  - forward(x, mode) computes y from x, caches what backward needs, and returns y.
//    The returned tensor is owned by the layer and stays valid until its next
//    forward/forward_cached call (buffers are reused across steps, never reallocated
//    for the same shape).
//  - forward may keep a reference to x instead of copying it (CachedInput below;
//    Linear, OutputProjection and SelfAttention do), so x must stay alive and
//    unchanged until the matching backward. Model::forward/backward guarantee it: each
//    layer's input is the previous layer's own output, valid until that layer's next
//    forward.
//  - backward(dy) takes dL/dy for the last forward's output and returns dL/dx (owned
//    by the layer, valid until the next backward). It ADDS dL/dtheta into every
//    parameter's grad: the trainer zeroes grads once per step, so weight tying and
//    gradient accumulation need no special code.
//  - parameters() lists the layer's parameters (and those of its sublayers) with
//    their full hierarchical names.
//  - output_shape(in) infers the output shape from the input shape (kAnyDim allowed)
//    without touching data, so a config is validated before any allocation; it
//    throws ShapeError when the input does not fit.
//  - forward_cached(x, start) is incremental decoding: x holds positions
//    [start, start + x.shape(1)) of one sequence batch, and the layer may use what it
//    cached from earlier positions since the last reset_cache(). The default (plain
//    eval forward) is right for position-wise layers; layers that look at other
//    positions or at absolute positions must override both.
//  - Memory: whoever runs a chain of layers (Model, and composites for their
//    sublayers, through forward_chain/backward_chain below) tells each layer when a
//    buffer it returned is dead, so large activations and gradients live only while
//    needed; layers free them with release_if_large (framework/tensor.hpp), so small
//    models keep every buffer and never allocate per step.
//      keeps_input(): forward keeps a reference to x for backward (CachedInput), so x's
//        producer must keep it. Default true, which is always safe.
//      release_output(): the caller is done with the last forward's output. Free it
//        unless this layer's own backward reads it (ReLU's mask is its output).
//      release_input_grad(): the caller has consumed the last backward's dx.
#pragma once

#include <functional>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "framework/parallel.hpp"
#include "framework/parameter.hpp"
#include "framework/rng.hpp"
#include "framework/tensor.hpp"

namespace strata {

enum class Mode { train, eval };

struct ShapeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The input of a layer's last forward, kept by reference for backward (see the
// contract above). get() refuses a backward without a forward, or after the tensor
// changed shape, with a ShapeError naming the layer.
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
  explicit Layer(std::string name) : name_(std::move(name)) {}
  virtual ~Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  virtual std::string_view type() const = 0;
  const std::string& name() const { return name_; }

  virtual const Tensor<T>& forward(const Tensor<T>& x, Mode mode) = 0;
  virtual const Tensor<T>& backward(const Tensor<T>& dy) = 0;
  virtual std::vector<Parameter<T>*> parameters() { return {}; }
  virtual Shape output_shape(const Shape& in) const = 0;

  // Generators the layer draws from while training (Dropout's masks), in a fixed order,
  // so that checkpoints save and restore them and a resumed run draws the same numbers.
  // Composite layers append their sublayers' generators.
  virtual void random_generators(std::vector<Rng*>& /*out*/) {}

  virtual bool keeps_input() const { return true; }
  virtual void release_output() {}
  virtual void release_input_grad() {}

  virtual void reset_cache() {}
  virtual const Tensor<T>& forward_cached(const Tensor<T>& x, std::size_t /*start*/) {
    return forward(x, Mode::eval);
  }

 private:
  std::string name_;
};

// backward_chain's default after_layer: nothing.
struct NoHook {
  void operator()(std::size_t) const {}
};

// Work to run next to each layer's forward (the trainer's optimizer update):
// tasks_for(i) readies it and returns how many independent tasks it has; run(t) runs
// task t. They share the thread pool with the layer's forward.
struct Alongside {
  std::function<std::size_t(std::size_t)> tasks_for;
  std::function<void(std::size_t)> run;
};

// Runs `layers` (pointers, raw or owning) in order on x and returns the last output.
// Each intermediate output is released as soon as the layer after it has run, unless
// that layer kept a reference to it. With `alongside`, layer i's forward is task 0 of a
// pool job whose other tasks are alongside's tasks for i (the calling thread takes
// task 0, then helps with the rest); they must not touch what the layer reads.
template <class T, class Layers>
const Tensor<T>& forward_chain(const Layers& layers, const Tensor<T>& x, Mode mode,
                               const Alongside* alongside = nullptr) {
  const Tensor<T>* h = &x;
  for (std::size_t i = 0; i < std::size(layers); ++i) {
    if (!alongside) {
      h = &layers[i]->forward(*h, mode);
    } else {
      parallel_for(1 + alongside->tasks_for(i), [&](std::size_t task) {
        if (task == 0)
          h = &layers[i]->forward(*h, mode);
        else
          alongside->run(task - 1);
      });
    }
    if (i > 0 && !layers[i]->keeps_input()) layers[i - 1]->release_output();
  }
  return *h;
}

// Runs the layers' backward in reverse order from dy and returns dL/d(input of the
// first). Each intermediate dx is released once the layer before has consumed it.
// after_layer(i), if given, runs right after layer i's backward.
template <class T, class Layers, class Hook = NoHook>
const Tensor<T>& backward_chain(const Layers& layers, const Tensor<T>& dy,
                                Hook&& after_layer = {}) {
  const Tensor<T>* g = &dy;
  for (std::size_t i = std::size(layers); i-- > 0;) {
    g = &layers[i]->backward(*g);
    if (i + 1 < std::size(layers)) layers[i + 1]->release_input_grad();
    after_layer(i);
  }
  return *g;
}

}  // namespace strata
