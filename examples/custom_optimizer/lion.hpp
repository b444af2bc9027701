// Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"): for each
// parameter p with gradient g and momentum m (zeros before the first step),
//
//   c <- beta1 m + (1 - beta1) g
//   p <- p - lr (sign(c) + weight_decay p)
//   m <- beta2 m + (1 - beta2) g
//
// Every entry moves by lr exactly (plus the decay), whatever the gradient's size, so
// Lion wants a learning rate 3 to 10 times smaller than Adam's.
// State: m per parameter NAME, exported as "<name>/m".
// Config: {type: Lion, lr: 3.0e-4, betas: [0.9, 0.99], weight_decay: 0, clip_norm: 0}.
#pragma once

#include <unordered_map>

#include "optimizers/optimizer.hpp"

namespace example {

using strata::Parameter;
using strata::Tensor;

template <class T>
class Lion : public strata::Optimizer<T> {
 public:
  static constexpr const char* kSummary = "Lion: steps by the sign of an interpolated momentum";
  static strata::Schema schema();
  static std::unique_ptr<strata::Optimizer<T>> from_config(const strata::ConfigSection& config);

  explicit Lion(double lr = strata::kDefaultLearningRate, double beta1 = 0.9, double beta2 = 0.99,
                double weight_decay = 0);

  std::string_view type() const override { return "Lion"; }
  std::map<std::string, Tensor<T>> state() const override;

 protected:
  void update(const std::vector<Parameter<T>*>& parameters, double lr) override;
  void restore_state(const std::map<std::string, Tensor<T>>& state) override;

 private:
  double beta1_, beta2_, weight_decay_;
  std::unordered_map<std::string, Tensor<T>> momentum_;
};

}  // namespace example
