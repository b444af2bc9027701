// Stochastic gradient descent with momentum, as torch.optim.SGD (dampening 0):
//   g <- g + weight_decay * p
//   buf <- momentum * buf + g            (first step: buf = g)
//   g <- g + momentum * buf  if nesterov, else g <- buf
//   p <- p - lr * g
// With momentum 0 there is no state. Otherwise state is one velocity buffer per
// parameter NAME, exported as "<name>/velocity"; it starts at zero, which makes the
// first step's buf = momentum * 0 + g = g exactly as torch's first-step copy.
// Config: {type: SGD, lr: 1.0e-3, momentum: 0, nesterov: false, weight_decay: 0,
//          clip_norm: 0}; nesterov needs momentum > 0.
#pragma once

#include <unordered_map>

#include "optimizers/optimizer.hpp"

namespace strata {

template <class T>
class SGD : public Optimizer<T> {
 public:
  static constexpr const char* kSummary = "stochastic gradient descent with (Nesterov) momentum";
  static Schema schema();
  static std::unique_ptr<Optimizer<T>> from_config(const ConfigSection& config);

  // Throws Error if nesterov is set without momentum (as torch does).
  explicit SGD(double lr = kDefaultLearningRate, double momentum = 0, bool nesterov = false,
               double weight_decay = 0);

  std::string_view type() const override { return "SGD"; }
  std::map<std::string, Tensor<T>> state() const override;

  double momentum() const { return momentum_; }
  bool nesterov() const { return nesterov_; }
  double weight_decay() const { return weight_decay_; }

 protected:
  void update(const std::vector<Parameter<T>*>& parameters, double lr) override;
  void restore_state(const std::map<std::string, Tensor<T>>& state) override;

 private:
  Tensor<T>& velocity_for(const Parameter<T>& p);

  double momentum_;
  bool nesterov_;
  double weight_decay_;
  std::unordered_map<std::string, Tensor<T>> velocity_;
};

}  // namespace strata
