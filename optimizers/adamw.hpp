// AdamW (Loshchilov & Hutter), as torch.optim.AdamW: decoupled weight decay
//   p <- p - lr * weight_decay * p
// followed by the plain Adam update (adam.hpp) with no L2 term in the gradient. The
// moment code and state are Adam's ("<name>/m", "<name>/v"); only the decay differs.
// Config: {type: AdamW, lr: 1.0e-3, betas: [0.9, 0.999], eps: 1.0e-8,
//          weight_decay: 0.01, clip_norm: 0}.
#pragma once

#include "optimizers/adam.hpp"

namespace strata {

template <class T>
class AdamW : public Adam<T> {
 public:
  static constexpr const char* kSummary = "Adam with decoupled weight decay (Loshchilov & Hutter)";
  static Schema schema();
  static std::unique_ptr<Optimizer<T>> from_config(const ConfigSection& config);

  explicit AdamW(double lr = kDefaultLearningRate, double beta1 = 0.9, double beta2 = 0.999,
                 double eps = 1e-8, double weight_decay = 0.01);

  std::string_view type() const override { return "AdamW"; }
};

}  // namespace strata
