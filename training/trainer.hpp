// The training loop: phases in order, each over its data for its epochs.
//
// One optimizer step per batch: zero grads, forward, masked cross-entropy, backward,
// global-norm clip, optimizer step at the schedule's learning rate. The optimizer's
// state carries over from phase to phase (as RustGPT's). Checkpoints are written
// every `checkpoint_every` steps, at the end of each phase, and after the step during
// which a stop was requested (a signal); a resumed run replays the same shuffles and
// continues with the same losses as an uninterrupted one.
#pragma once

#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "optimizers/optimizer.hpp"
#include "tasks/language_model.hpp"

namespace strata {

struct EpochRecord {
  std::string phase;
  std::int64_t epoch = 0;  // 1-based
  std::int64_t step = 0;   // optimizer steps so far
  double loss = 0;         // mean over sequences of their mean token loss (RustGPT's figure)
  double lr = 0;
  std::size_t tokens = 0;  // target tokens trained on in the epoch
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
};

struct TrainResult {
  std::vector<EpochRecord> epochs;
  std::int64_t steps = 0;
  double seconds = 0;
  bool finished = false;     // false when stopped by stop_after_steps or stop_requested
  bool interrupted = false;  // stopped by stop_requested; a checkpoint of `steps` is saved
};

// Trains `lm` with `optimizer`. With `resume`, continues from that checkpoint's
// position (its parameters must already be in `lm`; its optimizer state is loaded here),
// after checking that every phase's data is what the checkpoint was trained on.
TrainResult train(LanguageModel& lm, Optimizer<float>& optimizer, const TrainOptions& options,
                  const Checkpoint* resume = nullptr);

// The checkpoint of `lm` and `optimizer` at `position`.
Checkpoint make_checkpoint(const LanguageModel& lm, const Optimizer<float>& optimizer,
                           const TrainingPosition& position);

}  // namespace strata
