#include "optimizers/adam.hpp"

#include <cmath>

#include "framework/errors.hpp"

namespace strata {

template <class T>
Schema Adam<T>::schema_with(const std::string& weight_decay_default,
                            const std::string& weight_decay_help) {
  Schema schema = optimizer_common_keys("1.0e-3");
  schema.push_back(
      numbers_key("betas", "[0.9, 0.999]",
                  "decay rates of the first and second moment estimates, each in [0, 1)", 0, 1));
  schema.push_back(number_key("eps", "1.0e-8", "added to sqrt(v) for stability", 0));
  schema.push_back(number_key("weight_decay", weight_decay_default, weight_decay_help, 0));
  return schema;
}

template <class T>
Schema Adam<T>::schema() {
  return schema_with("0", "L2 penalty: weight_decay * p is added to the gradient");
}

template <class T>
void Adam<T>::configure(Adam& optimizer, const ConfigSection& config) {
  optimizer.read_common_keys(config);
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
    : beta1_(beta1), beta2_(beta2), eps_(eps), weight_decay_(weight_decay), decoupled_(decoupled) {
  this->default_lr_ = lr;
}

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

template <class T>
void Adam<T>::step(const std::vector<Parameter<T>*>& parameters, double lr) {
  const std::int64_t t = ++this->steps_;  // one tick per call, not per parameter
  // Per-step constants, in double then rounded once to T.
  const double correction1 = 1 - std::pow(beta1_, double(t));
  const double correction2 = 1 - std::pow(beta2_, double(t));
  const T step_size = T(lr / correction1);
  const T inv_sqrt_correction2 = T(1 / std::sqrt(correction2));
  const T b1 = T(beta1_), one_minus_b1 = T(1 - beta1_);
  const T b2 = T(beta2_), one_minus_b2 = T(1 - beta2_);
  const T eps = T(eps_);
  // Adam adds l2 * p to g; AdamW multiplies p by `shrink` first. Both in one loop,
  // the unused one being the identity (0 or 1), so the loop has no branch.
  const T l2 = decoupled_ ? T(0) : T(weight_decay_);
  const T shrink = decoupled_ ? T(1 - lr * weight_decay_) : T(1);

  for (Parameter<T>* p : parameters) {
    Moments& s = moments_for(*p);
    T* w = p->value.data();
    const T* g = p->grad.data();
    T* m = s.m.data();
    T* v = s.v.data();
    for (std::size_t i = 0, n = p->value.size(); i < n; ++i) {
      const T gi = g[i] + l2 * w[i];
      m[i] = b1 * m[i] + one_minus_b1 * gi;
      v[i] = b2 * v[i] + one_minus_b2 * gi * gi;
      w[i] = shrink * w[i] - step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_correction2 + eps);
    }
  }
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
void Adam<T>::load_state(const std::map<std::string, Tensor<T>>& state, std::int64_t steps) {
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
  this->steps_ = steps;
}

template class Adam<float>;
template class Adam<double>;

}  // namespace strata
