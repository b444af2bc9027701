// Classification: feature rows in, one class out, softmax cross-entropy over the classes.
//
//   task:
//     type: classification
//     data: data/digits.csv      # CSV (features..., label), or a .npy of features (N, F)
//     labels: ""                 # with a .npy `data`: the .npy of labels (N,)
//     features: 64               # numbers per row
//     classes: 10                # labels are 0 .. classes-1
//     validation_fraction: 0.2   # rows held out (chosen by the seed) for `strata evaluate`
//     feature_scale: 1.0         # multiplies every feature (e.g. 0.0625 for pixels 0-16)
//   model: {layers: [...]}       # input (batch, features), output (batch, classes)
//   training: {phases: [{name: train, epochs: 30, batch: 32, shuffle: true}]}
//
// The same optimizers, schedules, clipping, checkpoints (DIR/checkpoint/, vocab.txt
// empty) and resume as a language model; DIR/metrics.csv has the columns
// phase,epoch,step,loss,lr,rows,seconds,rows_per_s.
// A run also writes DIR/split.json: the seed and the row indices trained on and held
// out, so that another tool (bench/digits_torch.py) can use the same split.
#pragma once

#include <string>

#include "framework/config.hpp"
#include "framework/loss.hpp"
#include "framework/model.hpp"
#include "framework/rng.hpp"
#include "optimizers/optimizer.hpp"
#include "tasks/labeled_data.hpp"
#include "training/checkpoint.hpp"
#include "training/run_config.hpp"
#include "training/trainer.hpp"

namespace strata {

struct ClassificationTask {
  std::string data, labels;
  std::size_t features = 0, classes = 0;
  double validation_fraction = 0.2;
  double feature_scale = 1.0;
  SourceMark data_mark;
};

// Validates the `task:` section (ConfigError at file:line:col).
ClassificationTask parse_classification_task(const ConfigNode& task);

// The task's rows, scaled, split by `seed`. A file problem names task.data's position.
struct ClassificationData {
  RowSplit split;
  LabeledRows train, held_out;
};
ClassificationData load_classification_data(const ClassificationTask& task, std::uint64_t seed);

struct Classifier {
  RunConfig config;
  ClassificationTask task;
  Rng rng;
  Model<float> model;

  static Classifier create(RunConfig config);
  static Classifier restore(const Checkpoint& checkpoint, const std::string& run_dir);
};

bool is_classification(const RunConfig& config);

// Trains with the run loop (training/trainer.hpp): phases, epochs, shuffled batches of
// rows, checkpoints, stop and resume at any step.
TrainResult train(Classifier& classifier, Optimizer<float>& optimizer, const TrainOptions& options,
                  const Checkpoint* resume = nullptr);

// Rows order[first .. first + n) of `rows`, copied into `input` (n, features).
void gather_rows(const LabeledRows& rows, const std::vector<std::size_t>& order, std::size_t first,
                 std::size_t n, Tensor<float>& input);
// Shared by evaluate() and the trainer. The model on rows order[first .. first + n) of
// `rows`, copied into `input`; returns the logits (n, classes).
const Tensor<float>& forward_rows(Model<float>& model, const LabeledRows& rows,
                                  const std::vector<std::size_t>& order, std::size_t first,
                                  std::size_t n, Mode mode, Tensor<float>& input);
// Softmax cross-entropy of those logits against the rows' labels; `dlogits` gets the
// gradient (n, classes). `scratch` holds the logits as the (batch, seq, vocab) the loss takes.
LossValue row_loss(const Tensor<float>& logits, const LabeledRows& rows,
                   const std::vector<std::size_t>& order, std::size_t first, Tensor<float>& scratch,
                   Tensor<float>& dlogits);

struct ClassificationScore {
  std::size_t correct = 0, total = 0;
  double mean_loss = 0;  // mean cross-entropy over the rows
  double accuracy() const { return total ? double(correct) / double(total) : 0.0; }
};
// The model (in eval mode: no dropout) on `rows`.
ClassificationScore evaluate(Classifier& classifier, const LabeledRows& rows);

}  // namespace strata
