#include "lion.hpp"

#include "framework/errors.hpp"
#include "optimizers/optimizer_registry.hpp"

namespace example {

template <class T>
strata::Schema Lion<T>::schema() {
  // Only Lion's own keys: `lr` and `clip_norm` are every optimizer's, added by the registry.
  return {
      strata::numbers_key("betas", "[0.9, 0.99]",
                          "interpolation (beta1) and momentum decay (beta2), each in [0, 1]", 0, 1),
      strata::number_key("weight_decay", "0", "decoupled decay: p -= lr * weight_decay * p", 0),
  };
}

template <class T>
std::unique_ptr<strata::Optimizer<T>> Lion<T>::from_config(const strata::ConfigSection& config) {
  const std::vector<double> betas = config.numbers("betas");
  if (betas.size() != 2)
    config.fail("betas", "\"betas\" must be two numbers [beta1, beta2], got " +
                             std::to_string(betas.size()));
  return std::make_unique<Lion<T>>(config.number("lr"), betas[0], betas[1],
                                   config.number("weight_decay"));
}

template <class T>
Lion<T>::Lion(double lr, double beta1, double beta2, double weight_decay)
    : strata::Optimizer<T>(lr), beta1_(beta1), beta2_(beta2), weight_decay_(weight_decay) {}

template <class T>
void Lion<T>::update(const std::vector<Parameter<T>*>& parameters, double lr) {
  // The base class has already advanced steps(); Lion does not need the clock.
  const T b1 = T(beta1_), b2 = T(beta2_), rate = T(lr), shrink = T(1 - lr * weight_decay_);
  for (Parameter<T>* p : parameters) {
    auto [it, created] = momentum_.try_emplace(p->name);
    if (created) it->second = xt::zeros<T>(p->value.shape());
    if (it->second.shape() != p->value.shape())
      throw strata::Error("Lion state for parameter \"" + p->name +
                          "\" does not have the parameter's shape");
    T* w = p->value.data();
    const T* g = p->grad.data();
    T* m = it->second.data();
    for (std::size_t i = 0; i < p->value.size(); ++i) {
      const T c = b1 * m[i] + (T(1) - b1) * g[i];
      w[i] = shrink * w[i] - rate * T((c > 0) - (c < 0));
      m[i] = b2 * m[i] + (T(1) - b2) * g[i];
    }
  }
}

template <class T>
std::map<std::string, Tensor<T>> Lion<T>::state() const {
  std::map<std::string, Tensor<T>> out;
  for (const auto& [name, m] : momentum_) out.emplace(name + "/m", m);
  return out;
}

template <class T>
void Lion<T>::restore_state(const std::map<std::string, Tensor<T>>& state) {
  std::unordered_map<std::string, Tensor<T>> loaded;
  for (const auto& [key, tensor] : state) {
    if (key.size() < 3 || key.compare(key.size() - 2, 2, "/m") != 0)
      throw strata::Error("Lion state: unexpected entry \"" + key + "\" (expected <parameter>/m)");
    loaded.emplace(key.substr(0, key.size() - 2), tensor);
  }
  momentum_ = std::move(loaded);  // the base class then sets the clock
}

template class Lion<float>;
template class Lion<double>;

}  // namespace example

// The one line that makes "Lion" usable in configs once this library is loaded.
STRATA_REGISTER_OPTIMIZER("Lion", example::Lion);
