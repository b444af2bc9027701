#include "framework/grad_check.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <numeric>
#include <sstream>

#include "framework/errors.hpp"
#include "framework/loss.hpp"
#include "framework/model.hpp"
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
  for (const auto& [name, e] : accumulate_errors) m = std::max(m, e);
  return m;
}

std::string GradCheckResult::report() const {
  std::ostringstream out;
  out << "input: " << input_error << "\n";
  for (const auto& [name, e] : parameter_errors) out << name << ": " << e << "\n";
  for (const auto& [name, e] : accumulate_errors)
    out << name << " accumulate (backward twice = 2x): " << e << "\n";
  for (const std::string& name : zero_gradients)
    out << name << ": a true zero gradient (both norms below rounding), not compared\n";
  return out.str();
}

namespace {

// ||grad - 2 once|| / ||2 once|| for each parameter; grad is then restored to `once`.
std::vector<double> accumulate_errors(const std::vector<Parameter<double>*>& parameters,
                                      const std::vector<std::vector<double>>& once) {
  std::vector<double> errors;
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    std::vector<double> twice(once[i].size());
    for (std::size_t j = 0; j < twice.size(); ++j) twice[j] = 2 * once[i][j];
    Tensor<double>& grad = parameters[i]->grad;
    errors.push_back(relative_error(std::vector<double>(grad.begin(), grad.end()), twice));
    std::copy(once[i].begin(), once[i].end(), grad.begin());
  }
  return errors;
}

// Both gradients below what rounding lets central differences resolve (see
// ParameterGradCheck::floor): a true zero, e.g. attention's b_k, which softmax ignores.
bool is_rounding_noise(const std::vector<double>& analytic, const std::vector<double>& numeric,
                       double loss, double step) {
  const double noise = 4 * std::sqrt(double(analytic.size())) *
                       std::numeric_limits<double>::epsilon() * std::max(1.0, std::abs(loss)) /
                       step;
  double a = 0, n = 0;
  for (std::size_t i = 0; i < analytic.size(); ++i) {
    a += analytic[i] * analytic[i];
    n += numeric[i] * numeric[i];
  }
  return std::max(std::sqrt(a), std::sqrt(n)) <= noise;
}

std::vector<std::vector<double>> gradients_of(const std::vector<Parameter<double>*>& parameters) {
  std::vector<std::vector<double>> out;
  for (const Parameter<double>* p : parameters) out.emplace_back(p->grad.begin(), p->grad.end());
  return out;
}

}  // namespace

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
  const auto once = gradients_of(parameters);
  // the same forward again, then a second backward
  const double loss = projected_loss(layer, x, r, options);
  layer.backward(r);
  const std::vector<double> twice = accumulate_errors(parameters, once);
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    Parameter<double>* p = parameters[i];
    std::vector<double> analytic(p->grad.begin(), p->grad.end());
    auto numeric = numeric_gradient(layer, x, r, p->value.data(), p->value.size(), options);
    if (is_rounding_noise(analytic, numeric, loss, options.step)) {
      result.zero_gradients.push_back(p->name);
      result.parameter_errors.emplace_back(p->name, 0.0);
      result.accumulate_errors.emplace_back(p->name, 0.0);
      continue;
    }
    result.parameter_errors.emplace_back(p->name, relative_error(analytic, numeric));
    result.accumulate_errors.emplace_back(p->name, twice[i]);
  }
  if (options.check_input) {
    std::vector<double> analytic(dx.begin(), dx.end());
    auto numeric = numeric_gradient(layer, x, r, x.data(), x.size(), options);
    result.input_error = relative_error(analytic, numeric);
  }
  return result;
}

bool ParameterGradCheck::passed(double tolerance) const {
  // A zero gradient is rounding noise of cancelling terms: adding it twice need not
  // double it.
  return zero_gradient || (accumulate_error <= tolerance && error <= std::max(tolerance, floor));
}

double LossGradCheckResult::max_error() const {
  double m = 0;
  for (const ParameterGradCheck& p : parameters)
    if (!p.zero_gradient) m = std::max(m, p.error);
  return m;
}

bool LossGradCheckResult::passed(double tolerance) const {
  return std::all_of(parameters.begin(), parameters.end(),
                     [&](const ParameterGradCheck& p) { return p.passed(tolerance); });
}

std::string LossGradCheckResult::report(double tolerance) const {
  std::size_t width = 9;
  for (const ParameterGradCheck& p : parameters) width = std::max(width, p.name.size());
  std::ostringstream out;
  out << std::left << std::setw(int(width)) << "parameter" << std::right << std::setw(16)
      << "entries" << std::setw(12) << "|analytic|" << std::setw(12) << "|numeric|" << std::setw(16)
      << "relative error" << std::setw(16) << "rounding floor\n";
  for (const ParameterGradCheck& p : parameters) {
    const std::string entries = std::to_string(p.checked) + "/" + std::to_string(p.size);
    out << std::left << std::setw(int(width)) << p.name << std::right << std::setw(16) << entries
        << std::scientific << std::setprecision(3) << std::setw(12) << p.analytic_norm
        << std::setw(12) << p.numeric_norm << std::setw(16) << p.error << std::setw(15) << p.floor
        << std::defaultfloat;
    if (!p.zero_gradient && p.accumulate_error > tolerance)
      out << "  FAILED: a second backward gave " << p.accumulate_error
          << " away from twice the gradient (backward must ADD to grad, not overwrite it)";
    else if (!p.passed(tolerance))
      out << "  FAILED";
    else if (p.zero_gradient)
      out << "  (zero gradient)";
    else if (p.error > tolerance)
      out << "  (within the rounding floor)";
    out << "\n";
  }
  return out.str();
}

LossGradCheckResult check_loss_gradients(const std::vector<Parameter<double>*>& parameters,
                                         const std::function<double()>& loss,
                                         const std::function<void()>& gradient,
                                         const LossGradCheckOptions& options) {
  LossGradCheckResult result;
  result.loss = loss();
  for (Parameter<double>* p : parameters) std::fill(p->grad.begin(), p->grad.end(), 0.0);
  gradient();
  const auto once = gradients_of(parameters);
  gradient();  // must add the same again
  const std::vector<double> twice = accumulate_errors(parameters, once);
  Rng rng(options.seed);
  for (std::size_t k = 0; k < parameters.size(); ++k) {
    Parameter<double>* p = parameters[k];
    ParameterGradCheck check;
    check.accumulate_error = twice[k];
    check.name = p->name;
    check.size = p->value.size();
    std::vector<std::size_t> entries(check.size);
    std::iota(entries.begin(), entries.end(), std::size_t(0));
    if (options.max_entries > 0 && options.max_entries < check.size) {
      rng.shuffle(entries.begin(), entries.end());
      entries.resize(options.max_entries);
      std::sort(entries.begin(), entries.end());
    }
    check.checked = entries.size();
    std::vector<double> analytic, numeric;
    for (std::size_t i : entries) {
      double& v = p->value.data()[i];
      const double saved = v;
      v = saved + options.step;
      const double plus = loss();
      v = saved - options.step;
      const double minus = loss();
      v = saved;
      analytic.push_back(p->grad.data()[i]);
      numeric.push_back((plus - minus) / (2 * options.step));
    }
    for (double a : analytic) check.analytic_norm += a * a;
    for (double n : numeric) check.numeric_norm += n * n;
    check.analytic_norm = std::sqrt(check.analytic_norm);
    check.numeric_norm = std::sqrt(check.numeric_norm);
    check.error = relative_error(analytic, numeric);
    // Each loss evaluation is off by ~eps |L| from rounding, so each difference quotient by
    // ~eps |L| / h, and the compared vector by ~sqrt(n) times that.
    const double noise = options.rounding_margin * std::sqrt(double(check.checked)) *
                         std::numeric_limits<double>::epsilon() *
                         std::max(1.0, std::abs(result.loss)) / options.step;
    const double scale = std::max(check.analytic_norm, check.numeric_norm);
    check.zero_gradient = scale <= noise;
    check.floor = check.zero_gradient ? 1.0 : noise / scale;
    result.parameters.push_back(std::move(check));
  }
  return result;
}

LossGradCheckResult check_model_gradients(Model<double>& model, const Tensor<double>& ids,
                                          const std::vector<std::int32_t>& targets,
                                          const LossGradCheckOptions& options) {
  Tensor<double> dlogits;
  auto forward = [&]() -> const Tensor<double>& {
    const Tensor<double>& logits = model.forward(ids, options.mode);
    if (logits.dimension() != 3 || logits.shape(0) != ids.shape(0) ||
        logits.shape(1) != ids.shape(1) || logits.shape(0) * logits.shape(1) != targets.size())
      throw Error("gradient check: the model's output " +
                  to_string(Shape(logits.shape().begin(), logits.shape().end())) +
                  " is not logits (batch, seq, vocab) for ids " +
                  to_string(Shape(ids.shape().begin(), ids.shape().end())));
    return logits;
  };
  auto loss = [&] { return softmax_cross_entropy(forward(), targets, dlogits).mean; };
  auto gradient = [&] {
    softmax_cross_entropy(forward(), targets, dlogits);
    model.backward(dlogits);
  };
  return check_loss_gradients(model.parameters(), loss, gradient, options);
}

}  // namespace strata
