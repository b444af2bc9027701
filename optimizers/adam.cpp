#include "optimizers/adam.hpp"

#include <cmath>

#include "framework/errors.hpp"
#include "framework/parallel.hpp"

namespace strata {

template <class T>
Schema Adam<T>::schema_with(const std::string& weight_decay_default,
                            const std::string& weight_decay_help) {
  Schema schema;
  schema.push_back(
      numbers_key("betas", "[0.9, 0.999]",
                  "decay rates of the first and second moment estimates, each in [0, 1)", 0, 1));
  schema.push_back(positive_number_key("eps", "1.0e-8", "added to sqrt(v) for stability"));
  schema.push_back(number_key("weight_decay", weight_decay_default, weight_decay_help, 0));
  return schema;
}

template <class T>
Schema Adam<T>::schema() {
  return schema_with("0", "L2 penalty: weight_decay * p is added to the gradient");
}

template <class T>
void Adam<T>::configure(Adam& optimizer, const ConfigSection& config) {
  const std::vector<double> betas = config.numbers("betas");
  if (betas.size() != 2)
    config.fail("betas", "\"betas\" must be a list of two numbers [beta1, beta2], got " +
                             std::to_string(betas.size()));
  // beta = 1 would make the bias correction 1 - beta^t zero (a division by zero).
  for (double beta : betas)
    if (beta >= 1) config.fail("betas", "\"betas\" must each be < 1");
  optimizer.beta1_ = betas[0];
  optimizer.beta2_ = betas[1];
  optimizer.eps_ = config.number("eps");
  optimizer.weight_decay_ = config.number("weight_decay");
}

template <class T>
std::unique_ptr<Optimizer<T>> Adam<T>::from_config(const ConfigSection& config) {
  auto optimizer = std::make_unique<Adam<T>>();
  configure(*optimizer, config);
  return optimizer;
}

template <class T>
Adam<T>::Adam(double lr, double beta1, double beta2, double eps, double weight_decay)
    : Adam(lr, beta1, beta2, eps, weight_decay, false) {}

template <class T>
Adam<T>::Adam(double lr, double beta1, double beta2, double eps, double weight_decay,
              bool decoupled)
    : Optimizer<T>(lr),
      beta1_(beta1),
      beta2_(beta2),
      eps_(eps),
      weight_decay_(weight_decay),
      decoupled_(decoupled) {}

template <class T>
typename Adam<T>::Moments& Adam<T>::moments_for(const Parameter<T>& p) {
  auto [it, created] = moments_.try_emplace(p.name);
  Moments& s = it->second;
  if (created) {
    s.m = xt::zeros<T>(p.value.shape());
    s.v = xt::zeros<T>(p.value.shape());
  } else if (s.m.shape() != p.value.shape() || s.v.shape() != p.value.shape()) {
    throw Error("Adam state for parameter \"" + p.name + "\" has shape " +
                to_string(Shape(s.m.shape().begin(), s.m.shape().end())) + ", the parameter has " +
                to_string(Shape(p.value.shape().begin(), p.value.shape().end())));
  }
  return s;
}

namespace {

// The element-wise update of n entries. The L2 term is an explicit fma of the
// (optionally clip-scaled and rounded) gradient, so the scaled path gives the same bits
// as scaling the gradients in a pass of their own and then stepping.
template <class T, class C, bool kScale, bool kZero>
void adam_kernel(T* w, T* g, T* m, T* v, std::size_t n, const C& c) {
  for (std::size_t i = 0; i < n; ++i) {
    const T gi = std::fma(c.l2, w[i], kScale ? g[i] * c.scale : g[i]);
    m[i] = c.b1 * m[i] + c.one_minus_b1 * gi;
    v[i] = c.b2 * v[i] + c.one_minus_b2 * gi * gi;
    w[i] =
        c.shrink * w[i] - c.step_size * m[i] / (std::sqrt(v[i]) * c.inv_sqrt_correction2 + c.eps);
    if constexpr (kZero) g[i] = T(0);
  }
}

// 16K elements (64 KB of floats per stream): enough work per task to hide the pool's
// hand-off, small enough to balance two threads over the RustGPT model's 40 tensors.
constexpr std::size_t kAdamChunk = 16384;

}  // namespace

template <class T>
void Adam<T>::update(const std::vector<Parameter<T>*>& parameters, double lr) {
  prepare(parameters, lr, T(1), false);
  run_all_chunks();
}

template <class T>
void Adam<T>::update_scaled_and_zero(const std::vector<Parameter<T>*>& parameters, double lr,
                                     T grad_scale) {
  prepare(parameters, lr, grad_scale, true);
  run_all_chunks();
}

template <class T>
std::size_t Adam<T>::prepare_update_part(const std::vector<Parameter<T>*>& parameters, double lr,
                                         T grad_scale) {
  prepare(parameters, lr, grad_scale, true);
  return chunks_.size();
}

template <class T>
void Adam<T>::update_part_task(std::size_t task) {
  run_chunk(task);
}

template <class T>
void Adam<T>::prepare(const std::vector<Parameter<T>*>& parameters, double lr, T grad_scale,
                      bool zero) {
  const std::int64_t t = this->steps();
  // Per-step constants, in double then rounded once to T.
  const double correction1 = 1 - std::pow(beta1_, double(t));
  const double correction2 = 1 - std::pow(beta2_, double(t));
  Constants& c = constants_;
  c.step_size = T(lr / correction1);
  c.inv_sqrt_correction2 = T(1 / std::sqrt(correction2));
  c.b1 = T(beta1_), c.one_minus_b1 = T(1 - beta1_);
  c.b2 = T(beta2_), c.one_minus_b2 = T(1 - beta2_);
  c.eps = T(eps_);
  // Adam adds l2 * p to g; AdamW multiplies p by `shrink` first. Both in one loop,
  // the unused one being the identity (0 or 1), so the loop has no branch.
  c.l2 = decoupled_ ? T(0) : T(weight_decay_);
  c.shrink = decoupled_ ? T(1 - lr * weight_decay_) : T(1);
  c.scale = grad_scale;
  const bool scale = grad_scale != T(1);
  kernel_ = scale ? (zero ? &adam_kernel<T, Constants, true, true>
                          : &adam_kernel<T, Constants, true, false>)
                  : (zero ? &adam_kernel<T, Constants, false, true>
                          : &adam_kernel<T, Constants, false, false>);

  // Chunks are cut per parameter at fixed offsets (not per thread).
  chunks_.clear();
  for (Parameter<T>* p : parameters) {
    Moments& s = moments_for(*p);
    const std::size_t n = p->value.size();
    for (std::size_t first = 0; first < n; first += kAdamChunk)
      chunks_.push_back({p->value.data() + first, p->grad.data() + first, s.m.data() + first,
                         s.v.data() + first, std::min(kAdamChunk, n - first)});
  }
}

template <class T>
void Adam<T>::run_chunk(std::size_t i) const {
  const Chunk& k = chunks_[i];
  kernel_(k.w, k.g, k.m, k.v, k.n, constants_);
}

template <class T>
void Adam<T>::run_all_chunks() const {
  parallel_for(chunks_.size(), [this](std::size_t i) { run_chunk(i); });
}

template <class T>
std::map<std::string, Tensor<T>> Adam<T>::state() const {
  std::map<std::string, Tensor<T>> out;
  for (const auto& [name, s] : moments_) {
    out.emplace(name + "/m", s.m);
    out.emplace(name + "/v", s.v);
  }
  return out;
}

template <class T>
void Adam<T>::restore_state(const std::map<std::string, Tensor<T>>& state) {
  std::unordered_map<std::string, Moments> loaded;
  std::map<std::string, int> slots_seen;  // bit 1: m, bit 2: v
  for (const auto& [key, tensor] : state) {
    const auto slash = key.rfind('/');
    const std::string slot = slash == std::string::npos ? "" : key.substr(slash + 1);
    if (slot != "m" && slot != "v")
      throw Error("Adam state: unexpected entry \"" + key + "\" (expected <parameter>/m or /v)");
    const std::string name = key.substr(0, slash);
    (slot == "m" ? loaded[name].m : loaded[name].v) = tensor;
    slots_seen[name] |= slot == "m" ? 1 : 2;
  }
  for (const auto& [name, s] : loaded)
    if (slots_seen[name] != 3 || s.m.shape() != s.v.shape())
      throw Error("Adam state for parameter \"" + name + "\" needs /m and /v of one shape");
  moments_ = std::move(loaded);
}

template class Adam<float>;
template class Adam<double>;

}  // namespace strata
