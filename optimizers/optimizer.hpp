// The Optimizer interface. An optimizer walks the model's named parameter list;
// layers never own optimizers. Its state (moments, velocities) is keyed by parameter
// name, so a checkpoint restores it into any model with the same names.
//
// The base owns the clock: step(), step_scaled_and_zero() and begin_parts() are not
// virtual, each advances steps() by exactly one and then calls the subclass's update
// hooks, which read the new value (t = 1 on the first step) and never change it. A
// subclass writes update() and, if it keeps state, state() and restore_state(); the
// other hooks have defaults that are right for any optimizer. docs/writing-an-optimizer.md
// walks through one; optimizer_registry.hpp registers it by name.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "framework/config.hpp"
#include "framework/errors.hpp"
#include "framework/parameter.hpp"
#include "optimizers/schedule.hpp"

namespace strata {

template <class T>
class Optimizer;

// Builds the optimizer described by an `optimizer:` mapping ({type: Adam, lr: ...}):
// looks the type up in optimizer_registry(), validates the keys against its schema
// (errors at file:line:col, with did-you-mean) and reads `lr` and `clip_norm`.
template <class T>
std::unique_ptr<Optimizer<T>> make_optimizer(const ConfigNode& node);

template <class T>
class Optimizer {
 public:
  explicit Optimizer(double default_lr = kDefaultLearningRate) : default_lr_(default_lr) {}
  virtual ~Optimizer() = default;
  virtual std::string_view type() const = 0;

  // Updates every parameter from its grad at learning rate `lr` (the schedule's value
  // for this step): one tick of the clock, whatever the number of parameters.
  void step(const std::vector<Parameter<T>*>& parameters, double lr) {
    ++steps_;
    update(parameters, lr);
  }

  // The trainer's fused update, with the same result as
  //   every grad *= grad_scale (the clip factor; 1 = none); step(parameters, lr);
  //   every grad = 0 (ready for the next backward, which adds into it).
  void step_scaled_and_zero(const std::vector<Parameter<T>*>& parameters, double lr, T grad_scale) {
    ++steps_;
    update_scaled_and_zero(parameters, lr, grad_scale);
  }

  // One step in parts, for a trainer that runs the update alongside other work (the
  // next forward pass, layer by layer): begin_parts() advances the clock once; each part
  // then does what step_scaled_and_zero() does, for some of the parameters, at that
  // clock value. Parts that cover every parameter once give exactly one
  // step_scaled_and_zero(). A part is prepare_part(), which returns a number of
  // independent tasks, then part_task(i) for each i, in any order or concurrently,
  // before the next prepare_part().
  void begin_parts() { ++steps_; }
  std::size_t prepare_part(const std::vector<Parameter<T>*>& parameters, double lr, T grad_scale) {
    return prepare_update_part(parameters, lr, grad_scale);
  }
  void part_task(std::size_t task) { update_part_task(task); }

  std::int64_t steps() const { return steps_; }
  double default_lr() const { return default_lr_; }  // the config's `lr`
  // The config's `clip_norm` (global gradient L2 norm limit, 0 = off), applied by the
  // trainer before the step; every optimizer's schema has it (optimizer_common_keys).
  double clip_norm() const { return clip_norm_; }

  // Named state tensors "<parameter>/<slot>" (e.g. "blocks.0.ffn.fc1.weight/m"), for
  // checkpoints. The default is no state.
  virtual std::map<std::string, Tensor<T>> state() const { return {}; }
  // Replaces the state (restore_state(), which validates it) and then the clock.
  void load_state(const std::map<std::string, Tensor<T>>& state, std::int64_t steps) {
    restore_state(state);
    steps_ = steps;
  }

 protected:
  // The hooks. steps() is already the clock value of the step being made.
  //
  // update: p from p.grad at `lr`, for every parameter given; grads are left as they are.
  virtual void update(const std::vector<Parameter<T>*>& parameters, double lr) = 0;
  // As step_scaled_and_zero describes. Optimizers may do it in one pass over the memory
  // (Adam does, spread over the thread pool in chunks whose bounds do not depend on the
  // number of threads). The default does the three things in turn.
  virtual void update_scaled_and_zero(const std::vector<Parameter<T>*>& parameters, double lr,
                                      T grad_scale) {
    if (grad_scale != T(1))
      for (Parameter<T>* p : parameters)
        for (T& g : p->grad) g *= grad_scale;
    update(parameters, lr);
    for (Parameter<T>* p : parameters) std::fill(p->grad.begin(), p->grad.end(), T(0));
  }
  // A part of a step in tasks (see begin_parts). The default is one task that calls
  // update_scaled_and_zero() for the part's parameters; Adam's tasks are its chunks.
  virtual std::size_t prepare_update_part(const std::vector<Parameter<T>*>& parameters, double lr,
                                          T grad_scale) {
    part_ = {&parameters, lr, grad_scale};
    return 1;
  }
  virtual void update_part_task(std::size_t /*task*/) {
    update_scaled_and_zero(*part_.parameters, part_.lr, part_.grad_scale);
  }
  // Takes state() of an optimizer of the same type; throws Error naming what does not
  // fit. The default (no state) refuses any entry.
  virtual void restore_state(const std::map<std::string, Tensor<T>>& state) {
    if (!state.empty())
      throw Error(std::string(type()) + " keeps no state: unexpected entry \"" +
                  state.begin()->first + "\"");
  }

 private:
  template <class U>
  friend std::unique_ptr<Optimizer<U>> make_optimizer(const ConfigNode& node);

  std::int64_t steps_ = 0;
  double default_lr_;
  double clip_norm_ = 0;
  struct Part {
    const std::vector<Parameter<T>*>* parameters = nullptr;
    double lr = 0;
    T grad_scale = 1;
  } part_;
};

// The keys every optimizer has, which the registry puts before an optimizer's own
// schema: `lr` (default kDefaultLearningRate) and `clip_norm` (>= 0, default 0).
Schema optimizer_common_keys();

}  // namespace strata
