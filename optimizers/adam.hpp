// Adam (Kingma & Ba), as torch.optim.Adam: for each parameter p with gradient g,
//   g <- g + weight_decay * p                       (L2 penalty; 0 by default)
//   m <- beta1 m + (1 - beta1) g,   v <- beta2 v + (1 - beta2) g^2
//   p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// where t = steps(), which the Optimizer base advances once per step.
// AdamW (adamw.hpp) reuses this update with decoupled weight decay instead of L2.
//
// State: {m, v} per parameter NAME, created as zeros on the parameter's first step;
// state() exports them as "<name>/m" and "<name>/v". One fused loop reads g and p once
// and writes m, v and p in the same pass (with step_scaled_and_zero it also applies
// the clip factor to g and zeroes g); the loop runs over fixed chunks of the
// parameters on the thread pool (parallel.hpp): element-wise, so any split gives the
// same bits.
// Config: {type: Adam, lr: 1.0e-3, betas: [0.9, 0.999], eps: 1.0e-8, weight_decay: 0,
//          clip_norm: 0}.
#pragma once

#include <unordered_map>

#include "optimizers/optimizer.hpp"

namespace strata {

template <class T>
class Adam : public Optimizer<T> {
 public:
  static constexpr const char* kSummary = "Adam with bias correction and optional L2 weight decay";
  static Schema schema();
  static std::unique_ptr<Optimizer<T>> from_config(const ConfigSection& config);

  explicit Adam(double lr = kDefaultLearningRate, double beta1 = 0.9, double beta2 = 0.999,
                double eps = 1e-8, double weight_decay = 0);

  std::string_view type() const override { return "Adam"; }
  std::map<std::string, Tensor<T>> state() const override;

  double beta1() const { return beta1_; }
  double beta2() const { return beta2_; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }

 protected:
  void update(const std::vector<Parameter<T>*>& parameters, double lr) override;
  // One pass per element: scale g, update m, v, p, zero g (see Optimizer).
  void update_scaled_and_zero(const std::vector<Parameter<T>*>& parameters, double lr,
                              T grad_scale) override;
  // A part's tasks are its chunks (see Optimizer::begin_parts).
  std::size_t prepare_update_part(const std::vector<Parameter<T>*>& parameters, double lr,
                                  T grad_scale) override;
  void update_part_task(std::size_t task) override;
  void restore_state(const std::map<std::string, Tensor<T>>& state) override;

  // decoupled: weight decay shrinks p directly (AdamW) instead of adding to g (Adam).
  Adam(double lr, double beta1, double beta2, double eps, double weight_decay, bool decoupled);
  // Reads betas, eps and weight_decay into `optimizer`.
  static void configure(Adam& optimizer, const ConfigSection& config);
  // Schema shared with AdamW; only the weight-decay default and help differ.
  static Schema schema_with(const std::string& weight_decay_default,
                            const std::string& weight_decay_help);

 private:
  struct Moments {
    Tensor<T> m, v;
  };
  Moments& moments_for(const Parameter<T>& p);
  // Cuts `parameters` into chunks_ and sets the per-step constants and the kernel for
  // the current clock value; run_chunk(i) then updates chunk i. update(),
  // update_scaled_and_zero() and the parts share this.
  void prepare(const std::vector<Parameter<T>*>& parameters, double lr, T grad_scale, bool zero);
  void run_chunk(std::size_t i) const;
  void run_all_chunks() const;

  double beta1_, beta2_, eps_, weight_decay_;
  bool decoupled_;
  std::unordered_map<std::string, Moments> moments_;
  struct Chunk {  // a run of one parameter's elements, updated as one pool task
    T *w, *g, *m, *v;
    std::size_t n;
  };
  std::vector<Chunk> chunks_;  // rebuilt each step, its storage reused
  struct Constants {           // per step, computed in double and rounded once to T
    T step_size, inv_sqrt_correction2, b1, one_minus_b1, b2, one_minus_b2, eps, l2, shrink, scale;
  } constants_{};
  void (*kernel_)(T*, T*, T*, T*, std::size_t, const Constants&) = nullptr;
};

}  // namespace strata
