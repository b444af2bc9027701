// A training run of any task: the one way to start, resume and train one, used by the
// command line, the tests and the benchmark.
//
//   Run run = Run::start(load_run_config("configs/digits_mlp.yaml"));  // fresh, from the seed
//   Run run = Run::resume("runs/digits_mlp");                         // from DIR's checkpoint
//   TrainResult result = run.train(options);
//
// The task (`task.type`) picks the model: a LanguageModel (token ids, next-token loss)
// or a Classifier (feature rows, class labels). The optimizer comes from the config; a
// resumed run's state and position come from its checkpoint, inside train().
#pragma once

#include <memory>
#include <string>

#include "optimizers/optimizer.hpp"
#include "tasks/classification.hpp"
#include "tasks/language_model.hpp"
#include "tasks/language_model_training.hpp"
#include "training/checkpoint.hpp"
#include "training/trainer.hpp"

namespace strata {

class Run {
 public:
  static Run start(RunConfig config);
  // A new run of `config` (fresh optimizer, position 0) whose parameters are those of
  // the run in `init_dir`, matched by name and shape (an Error names the first that
  // differs); a language model keeps that run's tokenizer, so its ids mean the same.
  static Run start_from(RunConfig config, const std::string& init_dir);
  // `run_dir`'s checkpoint (load_checkpoint), the model restored from it.
  static Run resume(const std::string& run_dir);
  // A language model built by hand (the benchmark's own vocabulary and phases).
  static Run of(LanguageModel lm);

  // Trains from the start, or from the checkpoint resume() read.
  TrainResult train(const TrainOptions& options);

  RunConfig& config();
  const Model<float>& model() const;
  LanguageModel* language_model() { return lm_.get(); }               // null for another task
  Classifier* classifier() { return classifier_.get(); }              // null for another task
  const Checkpoint* checkpoint() const { return checkpoint_.get(); }  // resume()'s
  // "123 parameters, vocabulary 45" / "..., classes 10": what the CLI prints first.
  std::string describe() const;

 private:
  Run() = default;
  void make_optimizer_from_config();

  std::unique_ptr<LanguageModel> lm_;
  std::unique_ptr<Classifier> classifier_;
  std::unique_ptr<Optimizer<float>> optimizer_;
  std::unique_ptr<Checkpoint> checkpoint_;
};

}  // namespace strata
