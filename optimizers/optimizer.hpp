// The Optimizer interface. An optimizer walks the model's named parameter list;
// layers never own optimizers. Its state (moments, velocities) is keyed by parameter
// name, so a checkpoint restores it into any model with the same names, and one call
// to step() is one tick of its clock whatever the number of parameters.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "framework/config.hpp"
#include "framework/parameter.hpp"

namespace strata {

template <class T>
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual std::string_view type() const = 0;

  // Updates every parameter from its grad at learning rate `lr` (the schedule's value
  // for this step); advances the clock by one.
  virtual void step(const std::vector<Parameter<T>*>& parameters, double lr) = 0;

  // The trainer's fused update, with the same result as
  //   every grad *= grad_scale (the clip factor; 1 = none); step(parameters, lr);
  //   every grad = 0 (ready for the next backward, which adds into it).
  // Optimizers may do it in one pass over the memory (Adam does, spread over the
  // thread pool in chunks whose bounds do not depend on the number of threads). The
  // default does the three things in turn.
  virtual void step_scaled_and_zero(const std::vector<Parameter<T>*>& parameters, double lr,
                                    T grad_scale) {
    if (grad_scale != T(1))
      for (Parameter<T>* p : parameters)
        for (T& g : p->grad) g *= grad_scale;
    step(parameters, lr);
    for (Parameter<T>* p : parameters) std::fill(p->grad.begin(), p->grad.end(), T(0));
  }

  // One step in parts, for a trainer that runs the update alongside other work (the
  // next forward pass, layer by layer): begin_parts() advances the clock once; each part
  // then does what step_scaled_and_zero() does, for some of the parameters, at that
  // clock value. Parts that cover every parameter once give exactly one
  // step_scaled_and_zero(). A part is prepare_part(), which returns a number of
  // independent tasks, then part_task(i) for each i, in any order or concurrently
  // (Adam: its chunks), before the next prepare_part(). The default is one task that
  // undoes the tick step() adds, right for any optimizer whose step() ticks once.
  void begin_parts() { ++steps_; }
  virtual std::size_t prepare_part(const std::vector<Parameter<T>*>& parameters, double lr,
                                   T grad_scale) {
    part_ = {&parameters, lr, grad_scale};
    return 1;
  }
  virtual void part_task(std::size_t /*task*/) {
    --steps_;
    step_scaled_and_zero(*part_.parameters, part_.lr, part_.grad_scale);
  }

  std::int64_t steps() const { return steps_; }
  double default_lr() const { return default_lr_; }  // the config's `lr`
  // The config's `clip_norm` (global gradient L2 norm limit, 0 = off), applied by the
  // trainer before step(); every optimizer's schema has it (optimizer_common_keys).
  double clip_norm() const { return clip_norm_; }

  // Named state tensors "<parameter>/<slot>" (e.g. "blocks.0.ffn.fc1.weight/m"), for
  // checkpoints. load_state() replaces the state and the clock.
  virtual std::map<std::string, Tensor<T>> state() const = 0;
  virtual void load_state(const std::map<std::string, Tensor<T>>& state, std::int64_t steps) = 0;

 protected:
  // For from_config(): reads the keys every optimizer has (lr, clip_norm).
  void read_common_keys(const ConfigSection& config) {
    default_lr_ = config.number("lr");
    clip_norm_ = config.number("clip_norm");
  }

  std::int64_t steps_ = 0;
  double default_lr_ = 1e-3;
  double clip_norm_ = 0;

 private:
  struct Part {
    const std::vector<Parameter<T>*>* parameters = nullptr;
    double lr = 0;
    T grad_scale = 1;
  } part_;
};

// The keys every optimizer schema starts with: `lr` (default `default_lr`) and
// `clip_norm` (>= 0, default 0).
Schema optimizer_common_keys(const std::string& default_lr);

// Builds the optimizer described by an `optimizer:` mapping ({type: Adam, lr: ...}).
template <class T>
std::unique_ptr<Optimizer<T>> make_optimizer(const ConfigNode& node);

}  // namespace strata
