// The run loop every task trains with: phases in order, each over its data for its
// epochs, in steps.
//
// One optimizer step per batch: zero grads, the task's forward, loss and backward (the
// loop sums the clipping norm as backward completes each layer's gradients), global-norm
// clip, optimizer step at the schedule's learning rate. The optimizer's state carries
// over from phase to phase (as RustGPT's). Checkpoints are written every
// `checkpoint_every` steps, at the end of each phase, and after the step during which a
// stop was requested (a signal); a resumed run replays the same shuffles and continues
// with the same losses as an uninterrupted one. A loss or parameter that is not finite
// stops the run and keeps the last good checkpoint.
//
// A task (tasks/language_model_training.cpp, tasks/classification_training.cpp)
// implements TrainingTask: its data, its batches in the order the run's Rng draws, the
// forward, loss and backward of one batch, and what its checkpoint holds beside the
// loop's. The loop owns everything else.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "framework/model.hpp"
#include "framework/rng.hpp"
#include "optimizers/optimizer.hpp"
#include "training/checkpoint.hpp"
#include "training/run_config.hpp"

namespace strata {

struct EpochRecord {
  std::string phase;
  std::int64_t epoch = 0;  // 1-based
  std::int64_t step = 0;   // optimizer steps so far
  double loss = 0;         // mean over examples (LM: sequences, each its mean token loss)
  double lr = 0;
  std::size_t tokens = 0;  // items trained on in the epoch (LM: target tokens; rows)
  double seconds = 0;
};

struct TrainOptions {
  std::string out_dir;                 // checkpoint + metrics.csv; empty: write nothing
  std::ostream* log = nullptr;         // progress output; nullptr: silent
  bool progress_bar = false;           // redraw one line (a terminal) instead of a line per epoch
  std::int64_t stop_after_steps = -1;  // stop (as if killed) after this many steps; tests
  // Asked after every step (never inside one): true stops the run there, after saving a
  // checkpoint of that position (StopSignals::requested for the CLI).
  std::function<bool()> stop_requested;
  // At more than one thread, run each step's optimizer update alongside the next
  // forward pass (same arithmetic; false: update right after backward, for tests).
  bool overlap_update = true;
  // Whether this process writes the run directory and the progress lines. Of several
  // processes training one run together, only one does (rank 0).
  bool writes_files = true;
  // A fresh run also saves its parameters before the first step in DIR/initial/ (a run
  // directory of its own), for comparisons that start from the same weights.
  bool save_initial = false;
  // Stop once the run has taken this many optimizer steps in all, saving a checkpoint of
  // that position as a stop request does (--resume continues); -1: no limit.
  std::int64_t stop_at_step = -1;
};

// One validation evaluation (a row of DIR/validation.csv).
struct ValidationRecord {
  std::int64_t step = 0;
  std::string phase;
  std::int64_t epoch = 0;  // 1-based
  double loss = 0;         // mean over the validation data (LM: over its target tokens)
  double metric = 0;       // the task's: perplexity (LM), accuracy (classification)
};

struct TrainResult {
  std::vector<EpochRecord> epochs;
  std::vector<ValidationRecord> validations;
  std::int64_t steps = 0;
  double seconds = 0;
  bool finished = false;     // false when stopped by stop_after_steps or stop_requested
  bool interrupted = false;  // stopped by stop_requested; a checkpoint of `steps` is saved
};

// One batch's loss, as the task's forward_backward computed it.
struct BatchLoss {
  double mean = 0;           // the objective whose gradient backward propagated
  double sum = 0;            // over the batch's examples of each one's loss
  std::size_t examples = 0;  // sequences (LM) or rows
  std::size_t items = 0;     // what throughput counts: target tokens (LM) or rows
  // Items of the whole batch, every process's rows (data parallel: this process's share
  // of the objective is items / batch_items; training/data_parallel.hpp).
  std::size_t batch_items = 0;
};

// A validation evaluation's figures (ValidationRecord).
struct Evaluation {
  double loss = 0;
  double metric = 0;
};

// The model's forward pass as the loop runs it during training (it may finish the
// previous step's optimizer update on the way); the task calls it for its batch.
using TrainingForward = std::function<const Tensor<float>&(const Tensor<float>&)>;

class TrainingTask {
 public:
  virtual ~TrainingTask() = default;

  virtual const RunConfig& config() const = 0;
  virtual Model<float>& model() = 0;
  virtual Rng& rng() = 0;  // the run's: shuffles

  // Reads every phase's data and checks it before the first step (not when its phase's
  // turn comes); returns what each phase trains on, compared with a resumed checkpoint's.
  virtual std::vector<DataFingerprint> load_data() = 0;
  // Batches per epoch of phase p (after load_data).
  virtual std::size_t batches_per_epoch(std::size_t phase) const = 0;
  // Prepares the epoch's batches of phase p, shuffled with `shuffle` (nullptr: in order).
  virtual void begin_epoch(std::size_t phase, Rng* shuffle) = 0;
  // Batch b's weight in a step of several (`accumulate`): how many terms its loss is the
  // mean of (target tokens, rows), so that the step's gradient is that of one batch
  // holding them all. Data parallel: of the whole batch, every process's rows.
  virtual double batch_weight(std::size_t batch) const = 0;
  // Forward (through `forward`) and loss of batch b of the epoch, keeping the gradient
  // of the loss with respect to the model's output for backward().
  virtual BatchLoss forward_loss(std::size_t batch, const TrainingForward& forward) = 0;
  // Backward of the last forward_loss, its output gradient multiplied by `scale` (1:
  // untouched): adds every parameter's gradient; `completed` as Model::backward's.
  virtual void backward(float scale, const Model<float>::GradientsDone& completed) = 0;
  // The task's part of a checkpoint: config, tokenizer, parameters.
  virtual Checkpoint checkpoint_base() const = 0;
  // Whether phase p has validation data, and the model (no dropout) on it.
  virtual bool has_validation(std::size_t phase) const = 0;
  virtual Evaluation evaluate(std::size_t phase) = 0;
  // The name of Evaluation::metric ("perplexity", "accuracy"), a validation.csv column.
  virtual std::string metric_name() const = 0;
  // What the progress line calls an item per second ("tok/s", "rows/s"), and steps.csv's
  // last column ("tokens_per_second", "examples_per_second").
  virtual std::string rate_unit() const = 0;
  virtual std::string rate_column() const = 0;
  // A short text printed every generation.every steps ("" : none).
  virtual std::string sample() { return ""; }
  // metrics.csv's header line, and the row of `record` (the task names its columns).
  virtual std::string metrics_header() const = 0;
  // The record's row under that header: phase, epoch, step, loss, lr, items, seconds, rate.
  virtual std::string metrics_row(const EpochRecord& record) const;
  // Data parallel (training/data_parallel.hpp): from now on forward_loss builds (reads)
  // and runs only rows [rank B / ranks, (rank + 1) B / ranks) of each batch of B (none: examples 0,
  // and backward does nothing), its mean over those rows. false: the task cannot.
  virtual bool shard(std::size_t /*rank*/, std::size_t ranks) { return ranks == 1; }
  // Once, before the first step, with the run directory (when files are written).
  virtual void write_run_files(const std::string& /*out_dir*/) const {}
};

// Trains `task` with `optimizer`. With `resume`, continues from that checkpoint's
// position (its parameters must already be in the model; its optimizer state is loaded
// here), after checking that every phase's data is what the checkpoint was trained on.
TrainResult run_training(TrainingTask& task, Optimizer<float>& optimizer,
                         const TrainOptions& options, const Checkpoint* resume = nullptr);

}  // namespace strata
