// `strata evaluate DIR [--dataset FILE]`: how well a trained model does on a dataset.
//
// A language model: the mean loss per token (nats) and the perplexity on every text of
// FILE (default: the run's last phase's data; any text file or JSON array of strings,
// texts longer than max_seq_len included: tasks/lm_evaluation.hpp), then, when FILE
// holds `User: ... Assistant: ...` examples, the greedy answers to their questions
// compared token for token with the dataset's answers ("exact answers: N/M").
// A classifier: its accuracy and mean loss on its held-out rows (or FILE.csv).
#pragma once

#include <string>

namespace strata {

struct EvaluateArgs {
  std::string dir, dataset;
  int threads = 0;  // 0: the run's
  bool verbose = false;
};

int command_evaluate(const EvaluateArgs& args);

}  // namespace strata
