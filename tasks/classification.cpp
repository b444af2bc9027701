#include "tasks/classification.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "framework/loss.hpp"
#include "tasks/language_model.hpp"
#include "training/training_state.hpp"

namespace strata {

namespace {

const Schema& task_schema() {
  static const Schema schema = {
      string_key("type", kRequired, "classification"),
      string_key("data", kRequired,
                 "CSV file (features..., integer label; optional header) or .npy of features "
                 "(rows, features)"),
      string_key("labels", "", "with a .npy data file: the .npy of integer labels (rows,)"),
      integer_key("features", kRequired, "numbers per row", 1, 1 << 24),
      integer_key("classes", kRequired, "labels are 0 .. classes-1", 2, 1 << 24),
      number_key("validation_fraction", "0.2", "share of the rows held out (by the seed)", 0, 0.9),
      number_key("feature_scale", "1", "multiplies every feature", 1e-30, 1e30),
  };
  return schema;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The model's output must be (batch, classes): one logit per class.
void check_output(const Classifier& c) {
  const Shape out = c.model.output_shape_of_last();
  if (out.size() != 2 || out[1] != std::int64_t(c.task.classes))
    throw ConfigError(c.config.model.mark(), "model",
                      "the last layer's output is " + to_string(out) + "; a classifier of " +
                          std::to_string(c.task.classes) + " classes (task.classes) needs (*, " +
                          std::to_string(c.task.classes) + ")");
}

Classifier build(RunConfig config) {
  load_config_plugins(config);  // before the model: its layers may come from them
  ClassificationTask task = parse_classification_task(config.task);
  Classifier c{std::move(config), std::move(task), Rng(0), {}};
  c.rng = Rng(c.config.seed);
  c.model = build_model<float>(c.config.model, 0, c.rng, {kAnyDim, std::int64_t(c.task.features)});
  check_output(c);
  return c;
}

}  // namespace

// Runs the model on rows [first, first + n) of `rows` into `input`; returns the logits.
void gather_rows(const LabeledRows& rows, const std::vector<std::size_t>& order, std::size_t first,
                 std::size_t n, Tensor<float>& input) {
  ensure_shape(input, std::vector<std::size_t>{n, rows.features});
  for (std::size_t i = 0; i < n; ++i) {
    const float* row = rows.x.data() + order[first + i] * rows.features;
    std::copy(row, row + rows.features, input.data() + i * rows.features);
  }
}

const Tensor<float>& forward_rows(Model<float>& model, const LabeledRows& rows,
                                  const std::vector<std::size_t>& order, std::size_t first,
                                  std::size_t n, Mode mode, Tensor<float>& input) {
  gather_rows(rows, order, first, n, input);
  return model.forward(input, mode);
}

// Softmax cross-entropy of (n, classes) logits: the loss takes (batch, seq, vocab).
LossValue row_loss(const Tensor<float>& logits, const LabeledRows& rows,
                   const std::vector<std::size_t>& order, std::size_t first, Tensor<float>& scratch,
                   Tensor<float>& dlogits) {
  const std::size_t n = logits.shape(0), classes = logits.shape(1);
  ensure_shape(scratch, std::vector<std::size_t>{n, 1, classes});
  std::copy(logits.begin(), logits.end(), scratch.begin());
  std::vector<std::int32_t> targets(n);
  for (std::size_t i = 0; i < n; ++i) targets[i] = rows.y[order[first + i]];
  const LossValue loss = softmax_cross_entropy(scratch, targets, dlogits);
  dlogits.reshape({n, classes});
  return loss;
}

ClassificationTask parse_classification_task(const ConfigNode& node) {
  const ConfigSection s(node, "task", task_schema());
  ClassificationTask t;
  t.data = s.string("data");
  t.labels = s.string("labels");
  t.features = std::size_t(s.integer("features"));
  t.classes = std::size_t(s.integer("classes"));
  t.validation_fraction = s.number("validation_fraction");
  t.feature_scale = s.number("feature_scale");
  t.data_mark = s.mark("data");
  const bool npy = ends_with(t.data, ".npy");
  if (npy && t.labels.empty())
    s.fail("data", "a .npy data file holds the features only: give labels: LABELS.npy too");
  if (!npy && !t.labels.empty())
    s.fail("labels", "labels is for a .npy data file; a CSV file's last column is its label");
  return t;
}

ClassificationData load_classification_data(const ClassificationTask& task, std::uint64_t seed) {
  LabeledRows rows;
  try {
    rows = task.labels.empty() ? load_csv_rows(task.data, task.features, task.classes)
                               : load_npy_rows(task.data, task.labels, task.features, task.classes);
  } catch (const Error& e) {
    throw Error(task.data_mark.to_string() + ": task.data: " + e.what());
  }
  if (task.feature_scale != 1)
    for (float& v : rows.x) v = float(double(v) * task.feature_scale);
  ClassificationData data;
  data.split = split_rows(rows.rows(), task.validation_fraction, seed);
  if (data.split.train.empty())
    throw Error(task.data_mark.to_string() + ": task.data: " + task.data + ": " +
                std::to_string(rows.rows()) + " rows leave none to train on after holding out " +
                std::to_string(data.split.held_out.size()));
  data.train = select_rows(rows, data.split.train);
  data.held_out = select_rows(rows, data.split.held_out);
  return data;
}

bool is_classification(const RunConfig& config) { return config.task_type == "classification"; }

Classifier Classifier::create(RunConfig config) { return build(std::move(config)); }

Classifier Classifier::restore(const Checkpoint& checkpoint, const std::string& run_dir) {
  RunConfig config =
      parse_run_config(checkpoint.config_text, checkpoint_directory(run_dir) + "/config.yaml",
                       checkpoint.data_overrides);
  config.seed = checkpoint.seed;
  Classifier c = build(std::move(config));
  import_parameters(c.model, checkpoint.parameters, checkpoint_directory(run_dir) + "/model.npz");
  return c;
}

ClassificationScore evaluate(Classifier& c, const LabeledRows& rows) {
  constexpr std::size_t kChunk = 512;
  ClassificationScore score;
  std::vector<std::size_t> order(rows.rows());
  std::iota(order.begin(), order.end(), std::size_t(0));
  Tensor<float> input, scratch, dlogits;
  double loss_sum = 0;
  for (std::size_t first = 0; first < rows.rows(); first += kChunk) {
    const std::size_t n = std::min(kChunk, rows.rows() - first);
    const Tensor<float>& logits = forward_rows(c.model, rows, order, first, n, Mode::eval, input);
    const std::size_t classes = logits.shape(1);
    for (std::size_t i = 0; i < n; ++i) {
      const float* z = logits.data() + i * classes;
      const auto best = std::size_t(std::max_element(z, z + classes) - z);
      score.correct += best == std::size_t(rows.y[first + i]);
    }
    loss_sum += row_loss(logits, rows, order, first, scratch, dlogits).sum_of_sequence_means;
  }
  score.total = rows.rows();
  score.mean_loss = score.total ? loss_sum / double(score.total) : 0;
  return score;
}

}  // namespace strata
