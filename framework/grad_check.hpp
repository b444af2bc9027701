// Finite-difference gradient checker, public so out-of-tree layers can use it.
//
// It checks a Layer<double> on one input: with R a fixed random tensor shaped like
// the output, the scalar L = sum(forward(x) * R) has dL/dy = R, so backward(R) must
// return dL/dx and add dL/dtheta to every parameter. Each is compared with central
// differences (L(v + h) - L(v - h)) / 2h, element by element, and summarised as the
// norm-wise relative error ||analytic - numeric|| / max(||analytic||, ||numeric||).
// In double precision a correct layer gives ~1e-9 or better; Strata's tests demand
// <= 1e-6.
//
// Both checkers also run backward a second time without zeroing the grads: a correct
// layer ADDS, so each parameter's grad must then be twice the first one (relative error
// reported as "accumulate"). A backward that overwrites the gradient fails with 0.5.
//
// check_model_gradients() does the same for a whole model and its real objective
// (softmax cross-entropy of the logits against target ids); `strata gradcheck CONFIG`
// runs it on a configured model. check_loss_gradients() is the general form behind it,
// for any scalar loss of a set of parameters.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "framework/layer.hpp"
#include "framework/parameter.hpp"

namespace strata {

template <class T>
class Model;

struct GradCheckOptions {
  double step = 1e-6;
  std::uint64_t seed = 1;   // for R
  Mode mode = Mode::eval;   // Mode::train to check train-time behaviour (e.g. dropout)
  bool check_input = true;  // false for layers whose input is not differentiable (ids)
  // Called before every forward: e.g. reseed a layer's own randomness so each
  // evaluation draws the same dropout mask.
  std::function<void()> before_forward;
};

struct GradCheckResult {
  double input_error = 0;                                        // 0 when not checked
  std::vector<std::pair<std::string, double>> parameter_errors;  // by parameter name
  // ||grad after two backwards - 2 grad after one|| / ||2 grad||, by parameter name.
  std::vector<std::pair<std::string, double>> accumulate_errors;
  // Parameters whose gradient is a true zero (below what rounding resolves): their
  // errors above are 0.
  std::vector<std::string> zero_gradients;
  double max_error() const;
  std::string report() const;  // one line per checked tensor
};

GradCheckResult check_gradients(Layer<double>& layer, const Tensor<double>& input,
                                const GradCheckOptions& options = {});

// ||analytic - numeric|| / max(||analytic||, ||numeric||); 0 when both are zero.
double relative_error(const std::vector<double>& analytic, const std::vector<double>& numeric);

// ---- Whole models, any scalar loss -------------------------------------------------

struct LossGradCheckOptions {
  double step = 1e-6;
  Mode mode = Mode::eval;       // for check_model_gradients (eval: dropout off)
  std::size_t max_entries = 0;  // per parameter: compare this many random entries (0: all)
  std::uint64_t seed = 1;       // which entries, when sampling
  // Safety factor on the rounding bound (see ParameterGradCheck::floor).
  double rounding_margin = 4;
};

// One parameter tensor's comparison.
//
// Rounding limits what central differences can resolve: each loss is off by about
// eps |L| (eps = 2.2e-16), so each difference quotient by about eps |L| / h, and the
// compared vector by sqrt(n) times that. `floor` is that bound (times rounding_margin)
// relative to the gradient's norm: the smallest relative error the check can resolve.
// It is tiny for most tensors (~1e-9), but a gradient thousands of times smaller than
// the loss's other gradients (e.g. the first block's w_q and w_k at the usual small
// embedding init, where attention is nearly uniform) cannot be resolved to 1e-6 in
// double precision: its error is judged against the floor instead. A gradient whose
// norm is below the bound itself is a true zero (e.g. attention's b_k, which softmax
// ignores: adding c to every key shifts a row of scores by q.c): floor 1.
struct ParameterGradCheck {
  std::string name;
  std::size_t size = 0;                        // entries in the tensor
  std::size_t checked = 0;                     // entries compared
  double analytic_norm = 0, numeric_norm = 0;  // over the compared entries
  double error = 0;  // relative_error(analytic, numeric) over the compared entries
  double floor = 0;  // relative error that rounding alone can cause
  bool zero_gradient = false;
  double accumulate_error = 0;  // grad after two backwards vs twice the grad after one
  // A zero gradient, or accumulate_error <= tolerance and error <= tolerance (or within
  // the rounding floor).
  bool passed(double tolerance) const;
};

struct LossGradCheckResult {
  double loss = 0;  // at the unperturbed parameters
  std::vector<ParameterGradCheck> parameters;
  double max_error() const;             // over the tensors that are not zero gradients
  bool passed(double tolerance) const;  // every parameter passed
  // A table: name, entries, norms, relative error, rounding floor, and a note on each
  // tensor that failed, has a zero gradient, or passed only by its floor.
  std::string report(double tolerance = 1e-6) const;
};

// `loss()` evaluates the scalar loss at the parameters' current values; `gradient()`
// evaluates it once more and ADDS d(loss)/d(theta) into every parameter's grad (the
// checker zeroes the grads first). Each checked entry costs two loss() calls.
LossGradCheckResult check_loss_gradients(const std::vector<Parameter<double>*>& parameters,
                                         const std::function<double()>& loss,
                                         const std::function<void()>& gradient,
                                         const LossGradCheckOptions& options = {});

// A whole model: ids (batch, seq) -> logits (batch, seq, vocab), loss = the mean softmax
// cross-entropy against `targets` (batch * seq ids, kIgnore for padding), every
// parameter of the model checked. Throws Error if the model's output is not logits of
// that shape.
LossGradCheckResult check_model_gradients(Model<double>& model, const Tensor<double>& ids,
                                          const std::vector<std::int32_t>& targets,
                                          const LossGradCheckOptions& options = {});

}  // namespace strata
