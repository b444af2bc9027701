#include "framework/clip.hpp"

#include <cmath>

namespace strata {

template <class T>
double grad_norm(const std::vector<Parameter<T>*>& parameters) {
  double sum = 0;
  for (const Parameter<T>* p : parameters) {
    const T* g = p->grad.data();
    T partial = 0;  // per-tensor partial sums in T vectorise; totals stay in double
    for (std::size_t i = 0, n = p->grad.size(); i < n; ++i) partial += g[i] * g[i];
    sum += double(partial);
  }
  return std::sqrt(sum);
}

template <class T>
double clip_grad_norm(const std::vector<Parameter<T>*>& parameters, double max_norm) {
  const double norm = grad_norm(parameters);
  if (max_norm > 0 && norm > max_norm) {
    const T scale = T(max_norm / (norm + 1e-6));
    for (Parameter<T>* p : parameters) {
      T* g = p->grad.data();
      for (std::size_t i = 0, n = p->grad.size(); i < n; ++i) g[i] *= scale;
    }
  }
  return norm;
}

template double grad_norm<float>(const std::vector<Parameter<float>*>&);
template double grad_norm<double>(const std::vector<Parameter<double>*>&);
template double clip_grad_norm<float>(const std::vector<Parameter<float>*>&, double);
template double clip_grad_norm<double>(const std::vector<Parameter<double>*>&, double);

}  // namespace strata
