#include "framework/clip.hpp"

#include <cmath>

namespace strata {

// Sum of squares of n values in double. Squares of floats are exact in double; 32
// independent lanes let the loop vectorise (a single running sum is one long chain of
// dependent adds that the compiler may not reorder) and keep the total as accurate as
// a sequential double sum. Lanes are combined in a fixed order: the result does not
// depend on alignment or on how callers split the work.
template <class T>
double sum_of_squares(const T* x, std::size_t n) {
  constexpr std::size_t kLanes = 32;
  double lane[kLanes] = {};
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (std::size_t j = 0; j < kLanes; ++j) lane[j] += double(x[i + j]) * double(x[i + j]);
  for (std::size_t j = 0; i < n; ++i, ++j) lane[j] += double(x[i]) * double(x[i]);
  for (std::size_t width = kLanes / 2; width > 0; width /= 2)
    for (std::size_t j = 0; j < width; ++j) lane[j] += lane[j + width];
  return lane[0];
}

template <class T>
double grad_norm(const std::vector<Parameter<T>*>& parameters) {
  double sum = 0;
  for (const Parameter<T>* p : parameters) sum += sum_of_squares(p->grad.data(), p->grad.size());
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

template double sum_of_squares<float>(const float*, std::size_t);
template double sum_of_squares<double>(const double*, std::size_t);
template double grad_norm<float>(const std::vector<Parameter<float>*>&);
template double grad_norm<double>(const std::vector<Parameter<double>*>&);
template double clip_grad_norm<float>(const std::vector<Parameter<float>*>&, double);
template double clip_grad_norm<double>(const std::vector<Parameter<double>*>&, double);

}  // namespace strata
