#include "optimizers/adamw.hpp"

namespace strata {

template <class T>
Schema AdamW<T>::schema() {
  return Adam<T>::schema_with("0.01", "decoupled decay: p -= lr * weight_decay * p each step");
}

template <class T>
std::unique_ptr<Optimizer<T>> AdamW<T>::from_config(const ConfigSection& config) {
  auto optimizer = std::make_unique<AdamW<T>>();
  Adam<T>::configure(*optimizer, config);
  return optimizer;
}

template <class T>
AdamW<T>::AdamW(double lr, double beta1, double beta2, double eps, double weight_decay)
    : Adam<T>(lr, beta1, beta2, eps, weight_decay, true) {}

template class AdamW<float>;
template class AdamW<double>;

}  // namespace strata
