// Running a chain of layers: the Model's list, Sequential's, and any composite's.
//
// forward_chain and backward_chain run the layers in order (in reverse for backward)
// and free each intermediate buffer as soon as nothing reads it (Layer::release), so
// large activations and gradients live only while needed. Scheduling is the caller's,
// through callbacks: work to run next to each layer's forward (Alongside: the trainer's
// optimizer update) and a hook after each layer's backward (the trainer's gradient
// norm for clipping). Layers never see the thread pool.
#pragma once

#include <cstddef>
#include <functional>
#include <iterator>

#include "framework/layer.hpp"
#include "framework/parallel.hpp"

namespace strata {

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
    const Tensor<T>* in = h;
    if (!alongside) {
      h = &layers[i]->forward(*in, mode);
    } else {
      parallel_for(1 + alongside->tasks_for(i), [&](std::size_t task) {
        if (task == 0)
          h = &layers[i]->forward(*in, mode);
        else
          alongside->run(task - 1);
      });
    }
    if (i > 0 && !layers[i]->keeps_input()) layers[i - 1]->release(*in);
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
    const Tensor<T>* in = g;
    g = &layers[i]->backward(*in);
    if (i + 1 < std::size(layers)) layers[i + 1]->release(*in);
    after_layer(i);
  }
  return *g;
}

// Incremental decoding through the chain (Layer::forward_step); the few positions a
// step holds are never worth releasing.
template <class T, class Layers>
const Tensor<T>& step_chain(const Layers& layers, const Tensor<T>& x, std::size_t start) {
  const Tensor<T>* h = &x;
  for (std::size_t i = 0; i < std::size(layers); ++i) h = &layers[i]->forward_step(*h, start);
  return *h;
}

}  // namespace strata
