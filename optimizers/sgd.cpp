#include "optimizers/sgd.hpp"

#include "framework/errors.hpp"

namespace strata {

template <class T>
Schema SGD<T>::schema() {
  Schema schema;
  schema.push_back(number_key("momentum", "0", "velocity decay; 0 = plain SGD", 0, 1));
  schema.push_back(boolean_key("nesterov", "false", "Nesterov momentum (needs momentum > 0)"));
  schema.push_back(
      number_key("weight_decay", "0", "L2 penalty: weight_decay * p is added to the gradient", 0));
  return schema;
}

template <class T>
std::unique_ptr<Optimizer<T>> SGD<T>::from_config(const ConfigSection& config) {
  const double momentum = config.number("momentum");
  const bool nesterov = config.boolean("nesterov");
  if (nesterov && momentum == 0) config.fail("nesterov", "\"nesterov\" needs \"momentum\" > 0");
  return std::make_unique<SGD<T>>(config.number("lr"), momentum, nesterov,
                                  config.number("weight_decay"));
}

template <class T>
SGD<T>::SGD(double lr, double momentum, bool nesterov, double weight_decay)
    : Optimizer<T>(lr), momentum_(momentum), nesterov_(nesterov), weight_decay_(weight_decay) {
  if (nesterov && momentum == 0) throw Error("SGD: nesterov needs momentum > 0");
}

template <class T>
Tensor<T>& SGD<T>::velocity_for(const Parameter<T>& p) {
  auto [it, created] = velocity_.try_emplace(p.name);
  if (created) {
    it->second = xt::zeros<T>(p.value.shape());
  } else if (it->second.shape() != p.value.shape()) {
    throw Error("SGD velocity for parameter \"" + p.name + "\" has shape " +
                to_string(Shape(it->second.shape().begin(), it->second.shape().end())) +
                ", the parameter has " +
                to_string(Shape(p.value.shape().begin(), p.value.shape().end())));
  }
  return it->second;
}

template <class T>
void SGD<T>::update(const std::vector<Parameter<T>*>& parameters, double lr) {
  const T rate = T(lr), decay = T(weight_decay_), mu = T(momentum_);
  for (Parameter<T>* p : parameters) {
    T* w = p->value.data();
    const T* g = p->grad.data();
    const std::size_t n = p->value.size();
    if (momentum_ == 0) {
      for (std::size_t i = 0; i < n; ++i) w[i] -= rate * (g[i] + decay * w[i]);
      continue;
    }
    T* buf = velocity_for(*p).data();
    if (nesterov_) {
      for (std::size_t i = 0; i < n; ++i) {
        const T gi = g[i] + decay * w[i];
        buf[i] = mu * buf[i] + gi;
        w[i] -= rate * (gi + mu * buf[i]);
      }
    } else {
      for (std::size_t i = 0; i < n; ++i) {
        buf[i] = mu * buf[i] + (g[i] + decay * w[i]);
        w[i] -= rate * buf[i];
      }
    }
  }
}

template <class T>
std::map<std::string, Tensor<T>> SGD<T>::state() const {
  std::map<std::string, Tensor<T>> out;
  for (const auto& [name, buf] : velocity_) out.emplace(name + "/velocity", buf);
  return out;
}

template <class T>
void SGD<T>::restore_state(const std::map<std::string, Tensor<T>>& state) {
  std::unordered_map<std::string, Tensor<T>> loaded;
  const std::string suffix = "/velocity";
  for (const auto& [key, tensor] : state) {
    if (key.size() <= suffix.size() ||
        key.compare(key.size() - suffix.size(), suffix.size(), suffix))
      throw Error("SGD state: unexpected entry \"" + key + "\" (expected <parameter>/velocity)");
    loaded.emplace(key.substr(0, key.size() - suffix.size()), tensor);
  }
  velocity_ = std::move(loaded);
}

template class SGD<float>;
template class SGD<double>;

}  // namespace strata
