// The Optimizer interface. An optimizer walks the model's named parameter list;
// layers never own optimizers. Its state (moments, velocities) is keyed by parameter
// name, so a checkpoint restores it into any model with the same names, and one call
// to step() is one tick of its clock whatever the number of parameters.
#pragma once

#include <cstdint>
#include <map>
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

  std::int64_t steps() const { return steps_; }
  double default_lr() const { return default_lr_; }  // the config's `lr`

  // Named state tensors "<parameter>/<slot>" (e.g. "blocks.0.ffn.fc1.weight/m"), for
  // checkpoints. load_state() replaces the state and the clock.
  virtual std::map<std::string, Tensor<T>> state() const = 0;
  virtual void load_state(const std::map<std::string, Tensor<T>>& state, std::int64_t steps) = 0;

 protected:
  std::int64_t steps_ = 0;
  double default_lr_ = 1e-3;
};

// Builds the optimizer described by an `optimizer:` mapping ({type: Adam, lr: ...}).
template <class T>
std::unique_ptr<Optimizer<T>> make_optimizer(const ConfigNode& node);

}  // namespace strata
