// Finite-difference gradient checker, public so out-of-tree layers can use it.
//
// It checks a Layer<double> on one input: with R a fixed random tensor shaped like
// the output, the scalar L = sum(forward(x) * R) has dL/dy = R, so backward(R) must
// return dL/dx and add dL/dtheta to every parameter. Each is compared with central
// differences (L(v + h) - L(v - h)) / 2h, element by element, and summarised as the
// norm-wise relative error ||analytic - numeric|| / max(||analytic||, ||numeric||).
// In double precision a correct layer gives ~1e-9 or better; Strata's tests demand
// <= 1e-6.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "framework/layer.hpp"

namespace strata {

struct GradCheckOptions {
  double step = 1e-6;
  std::uint64_t seed = 1;       // for R
  Mode mode = Mode::eval;       // Mode::train to check train-time behaviour (e.g. dropout)
  bool check_input = true;      // false for layers whose input is not differentiable (ids)
  // Called before every forward: e.g. reseed a layer's own randomness so each
  // evaluation draws the same dropout mask.
  std::function<void()> before_forward;
};

struct GradCheckResult {
  double input_error = 0;                                   // 0 when not checked
  std::vector<std::pair<std::string, double>> parameter_errors;  // by parameter name
  double max_error() const;
  std::string report() const;  // one line per checked tensor
};

GradCheckResult check_gradients(Layer<double>& layer, const Tensor<double>& input,
                                const GradCheckOptions& options = {});

// ||analytic - numeric|| / max(||analytic||, ||numeric||); 0 when both are zero.
double relative_error(const std::vector<double>& analytic, const std::vector<double>& numeric);

}  // namespace strata
