#include "app/evaluate.hpp"

#include <iomanip>
#include <iostream>
#include <set>

#include "app/chat.hpp"
#include "framework/errors.hpp"
#include "framework/parallel.hpp"
#include "tasks/classification.hpp"
#include "tasks/corpus_phase.hpp"
#include "tasks/lm_evaluation.hpp"
#include "tasks/run.hpp"
#include "text/dataset.hpp"
#include "training/run_config.hpp"

namespace strata {
namespace {

// A classifier's accuracy on its held-out rows (or on all rows of --dataset FILE.csv).
int evaluate_classifier(const EvaluateArgs& args, const Checkpoint& checkpoint) {
  Classifier c = Classifier::restore(checkpoint, args.dir);
  if (args.threads > 0) c.config.threads = args.threads;
  const ThreadingScope threading(c.config.threads);
  LabeledRows rows;
  std::string what = "held-out";
  if (!args.dataset.empty()) {
    rows = load_csv_rows(args.dataset, c.task.features, c.task.classes);
    for (float& v : rows.x) v = float(double(v) * c.task.feature_scale);
    what = args.dataset;
  } else {
    rows = load_classification_data(c.task, c.config.seed).held_out;
    if (rows.rows() == 0)
      throw Error(args.dir +
                  ": task.validation_fraction is 0: no held-out rows to evaluate "
                  "(give --dataset FILE.csv)");
  }
  const ClassificationScore score = evaluate(c, rows);
  std::cout << std::fixed << std::setprecision(4) << what << " accuracy: " << score.accuracy()
            << " (" << score.correct << "/" << score.total << "), mean loss " << score.mean_loss
            << "\n";
  return 0;
}

// Greedy answers to every `User: ... Assistant: ...` example of `texts`, compared token
// for token with the dataset's answer; printed only when some example has one.
void exact_answers(LanguageModel& lm, const std::vector<std::string>& texts,
                   const EvaluateArgs& args) {
  SamplingOptions options;
  const std::size_t max_len = std::size_t(lm.model.max_seq_len);
  options.max_tokens = max_len;
  std::size_t exact = 0, total = 0, too_long = 0;
  Rng rng(0);
  for (const std::string& text : texts) {
    const auto split = text.find("Assistant:");
    if (split == std::string::npos) continue;
    const auto prompt = lm.encode(text.substr(0, split), nullptr);
    if (prompt.empty()) continue;
    if (prompt.size() >= max_len) {
      ++too_long;
      continue;
    }
    const auto expected = lm.encode(text.substr(split), nullptr);
    const auto got = generate(lm.model, prompt, lm.tokenizer->eos_id(), options, rng);
    ++total;
    const bool ok = got == expected;
    exact += ok;
    if (args.verbose || !ok)
      std::cout << (ok ? "ok    " : "WRONG ") << text.substr(0, split) << "-> "
                << lm.tokenizer->decode(got) << "\n";
  }
  if (total) std::cout << "exact answers: " << exact << "/" << total << "\n";
  if (too_long)
    std::cout << too_long << " question(s) not asked: longer than the model's " << max_len
              << " positions\n";
}

// The documents of a `format: corpus` phase, each encoded as training encodes it (its
// pieces' tokens, then </s>), with their loss; one document at a time is held as text.
int evaluate_corpus(LanguageModel& lm, const PhaseConfig& phase) {
  const CorpusOptions options = corpus_options(phase);
  std::vector<std::vector<std::int32_t>> sequences(1);
  read_corpus(corpus_files(options), options,
              {[&](std::string_view text) {
                 const auto ids = lm.tokenizer->encode(text).ids;
                 sequences.back().insert(sequences.back().end(), ids.begin(), ids.end());
               },
               [&] {
                 sequences.back().push_back(lm.tokenizer->eos_id());
                 sequences.emplace_back();
               }});
  sequences.pop_back();  // the one after the last document
  const TokenLoss loss = language_model_loss(lm.model, sequences, lm.tokenizer->pad_id());
  if (loss.tokens == 0)
    throw Error(phase.data + ": nothing to evaluate: no document of at least 2 tokens");
  std::cout << std::fixed << std::setprecision(4) << phase.data << ": mean loss " << loss.mean()
            << " per token over " << loss.tokens << " predicted tokens (" << loss.texts
            << " documents), perplexity " << loss.perplexity() << "\n";
  return 0;
}

int evaluate_language_model(const EvaluateArgs& args) {
  LanguageModel lm = load_model(args.dir, args.threads);
  const ThreadingScope threading(lm.config.threads);
  std::string path = args.dataset;
  if (path.empty()) {
    if (lm.config.phases.empty()) throw Error("no --dataset given and the run has no phases");
    if (lm.config.phases.back().format == "corpus")
      return evaluate_corpus(lm, lm.config.phases.back());
    path = lm.config.phases.back().data;
  }
  const auto texts = load_texts(path, DataFormat::kAuto);
  std::vector<std::vector<std::int32_t>> sequences;
  std::set<std::string> unknown;
  for (const std::string& text : texts) {
    std::vector<std::string> missing;
    sequences.push_back(lm.encode(text, &missing));
    unknown.insert(missing.begin(), missing.end());
  }
  const TokenLoss loss = language_model_loss(lm.model, sequences, lm.tokenizer->pad_id());
  if (loss.tokens == 0) throw Error(path + ": nothing to evaluate: no text of at least 2 tokens");
  std::cout << std::fixed << std::setprecision(4) << path << ": mean loss " << loss.mean()
            << " per token over " << loss.tokens << " predicted tokens (" << loss.texts
            << " texts), perplexity " << loss.perplexity() << "\n";
  std::cout.unsetf(std::ios::floatfield);
  if (!unknown.empty())
    std::cout << "note: " << unknown.size()
              << " distinct word(s) not in the vocabulary were read as <unk>\n";
  exact_answers(lm, texts, args);
  return 0;
}

}  // namespace

int command_evaluate(const EvaluateArgs& args) {
  {
    const Checkpoint checkpoint = load_checkpoint(args.dir);
    if (is_classification(
            parse_run_config(checkpoint.config_text, args.dir + "/checkpoint/config.yaml")))
      return evaluate_classifier(args, checkpoint);
  }
  return evaluate_language_model(args);
}

}  // namespace strata
