#include "framework/grad_check.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "framework/rng.hpp"

namespace strata {

double relative_error(const std::vector<double>& analytic, const std::vector<double>& numeric) {
  double diff = 0, a = 0, n = 0;
  for (std::size_t i = 0; i < analytic.size(); ++i) {
    diff += (analytic[i] - numeric[i]) * (analytic[i] - numeric[i]);
    a += analytic[i] * analytic[i];
    n += numeric[i] * numeric[i];
  }
  const double scale = std::max(std::sqrt(a), std::sqrt(n));
  return scale == 0 ? 0.0 : std::sqrt(diff) / scale;
}

double GradCheckResult::max_error() const {
  double m = input_error;
  for (const auto& [name, e] : parameter_errors) m = std::max(m, e);
  return m;
}

std::string GradCheckResult::report() const {
  std::ostringstream out;
  out << "input: " << input_error << "\n";
  for (const auto& [name, e] : parameter_errors) out << name << ": " << e << "\n";
  return out.str();
}

namespace {

double projected_loss(Layer<double>& layer, const Tensor<double>& x, const Tensor<double>& r,
                      const GradCheckOptions& options) {
  if (options.before_forward) options.before_forward();
  const Tensor<double>& y = layer.forward(x, options.mode);
  double sum = 0;
  for (std::size_t i = 0; i < y.size(); ++i) sum += y.data()[i] * r.data()[i];
  return sum;
}

std::vector<double> numeric_gradient(Layer<double>& layer, const Tensor<double>& x,
                                     const Tensor<double>& r, double* values, std::size_t count,
                                     const GradCheckOptions& options) {
  std::vector<double> out(count);
  for (std::size_t i = 0; i < count; ++i) {
    const double saved = values[i];
    values[i] = saved + options.step;
    const double plus = projected_loss(layer, x, r, options);
    values[i] = saved - options.step;
    const double minus = projected_loss(layer, x, r, options);
    values[i] = saved;
    out[i] = (plus - minus) / (2 * options.step);
  }
  return out;
}

}  // namespace

GradCheckResult check_gradients(Layer<double>& layer, const Tensor<double>& input,
                                const GradCheckOptions& options) {
  Tensor<double> x = input;
  if (options.before_forward) options.before_forward();
  const Tensor<double> y = layer.forward(x, options.mode);
  Rng rng(options.seed);
  Tensor<double> r = Tensor<double>::from_shape(y.shape());
  for (auto& v : r) v = rng.normal(0, 1);

  const auto parameters = layer.parameters();
  for (Parameter<double>* p : parameters) std::fill(p->grad.begin(), p->grad.end(), 0.0);
  const Tensor<double> dx = layer.backward(r);

  GradCheckResult result;
  for (Parameter<double>* p : parameters) {
    std::vector<double> analytic(p->grad.begin(), p->grad.end());
    auto numeric = numeric_gradient(layer, x, r, p->value.data(), p->value.size(), options);
    result.parameter_errors.emplace_back(p->name, relative_error(analytic, numeric));
  }
  if (options.check_input) {
    std::vector<double> analytic(dx.begin(), dx.end());
    auto numeric = numeric_gradient(layer, x, r, x.data(), x.size(), options);
    result.input_error = relative_error(analytic, numeric);
  }
  return result;
}

}  // namespace strata
