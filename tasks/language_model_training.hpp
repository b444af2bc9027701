// Training a language model: the run loop (training/trainer.hpp) over next-token
// batches of each phase's examples (tasks/batch.hpp), softmax cross-entropy over the
// vocabulary, the tokenizer saved with every checkpoint.
#pragma once

#include "optimizers/optimizer.hpp"
#include "tasks/language_model.hpp"
#include "training/checkpoint.hpp"
#include "training/trainer.hpp"

namespace strata {

// Trains `lm` with `optimizer` (run_training). With `resume`, its parameters must
// already be in `lm` (LanguageModel::restore).
TrainResult train(LanguageModel& lm, Optimizer<float>& optimizer, const TrainOptions& options,
                  const Checkpoint* resume = nullptr);

}  // namespace strata
