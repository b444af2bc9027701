#include "tasks/language_model_training.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <memory>
#include <numeric>
#include <sstream>

#include "framework/loss.hpp"
#include "tasks/batch.hpp"
#include "tasks/corpus_phase.hpp"
#include "tasks/generator.hpp"
#include "text/dataset.hpp"
#include "training/training_state.hpp"

namespace strata {

namespace {

class LanguageModelTask : public TrainingTask {
 public:
  // `writes`: this process writes the run directory (over MPI, rank 0 only); another
  // one tokenises into a cache of its own, reusing the run directory's token file only
  // when it is already there (rank 0 writes it; ranks start in any order).
  LanguageModelTask(LanguageModel& lm, const std::string& run_dir, bool writes)
      : lm_(lm),
        run_dir_(writes ? run_dir : ""),
        shared_cache_(writes || run_dir.empty() ? "" : corpus_cache_directory(run_dir)) {}

  const RunConfig& config() const override { return lm_.config; }
  Model<float>& model() override { return lm_.model; }
  Rng& rng() override { return lm_.rng; }

  std::vector<DataFingerprint> load_data() override;

  std::size_t batches_per_epoch(std::size_t p) const override {
    const std::size_t batch = lm_.config.phases[p].batch;
    const std::size_t items =
        corpora_[p] ? train_windows_[p].size() : count_trainable(sequences_[p]);
    return (items + batch - 1) / batch;
  }

  void begin_epoch(std::size_t p, Rng* shuffle) override {
    phase_ = p;
    if (corpora_[p]) {  // the order of the windows; their batches are read as they come
      order_ = train_windows_[p];
      if (shuffle) shuffle->shuffle(order_.begin(), order_.end());
      return;
    }
    examples_ = EpochBatches(sequences_[p], lm_.config.phases[p].batch,
                             std::size_t(lm_.model.max_seq_len), lm_.tokenizer->pad_id(), shuffle);
  }

  double batch_weight(std::size_t b) const override { return double(batch_targets(b)); }

  bool shard(std::size_t rank, std::size_t ranks) override {
    rank_ = rank;
    ranks_ = ranks;
    return true;
  }

  // Builds (reads, for a corpus) only this process's rows of batch b.
  BatchLoss forward_loss(std::size_t b, const TrainingForward& forward) override {
    const Batch rows = corpora_[phase_] ? corpus_batch(b) : examples_.batch(b, rank_, ranks_);
    has_rows_ = rows.batch > 0;
    const std::size_t batch_items = ranks_ > 1 ? batch_targets(b) : 0;
    if (!has_rows_) return {0, 0, 0, 0, batch_items};
    ensure_shape(input_, std::vector<std::size_t>{rows.batch, rows.length});
    std::copy(rows.inputs.begin(), rows.inputs.end(), input_.begin());
    const Tensor<float>& logits = forward(input_);
    const LossValue loss = softmax_cross_entropy(logits, rows.targets, dlogits_);
    return {loss.mean, loss.sum_of_sequence_means, rows.batch, loss.tokens,
            ranks_ > 1 ? batch_items : loss.tokens};
  }

  void backward(float scale, const Model<float>::GradientsDone& completed) override {
    if (!has_rows_) return;
    lm_.model.release_output();  // the logits are dead once dlogits holds their gradient
    if (scale != 1.0f) dlogits_ *= scale;
    if (completed)
      lm_.model.backward(dlogits_, completed);
    else
      lm_.model.backward(dlogits_);
  }

  Checkpoint checkpoint_base() const override {
    Checkpoint c;
    c.config_text = lm_.config.text;
    c.config_file = lm_.config.file;
    c.seed = lm_.config.seed;
    c.data_overrides = lm_.config.data_overrides;
    c.tokenizer_type = lm_.tokenizer->type();
    c.tokenizer_files = lm_.tokenizer->files();
    c.parameters = lm_.export_parameters();
    return c;
  }

  bool has_validation(std::size_t p) const override {
    return !validation_[p].empty() || !held_windows_[p].empty();
  }
  Evaluation evaluate(std::size_t p) override;
  std::string metric_name() const override { return "perplexity"; }
  std::string sample() override;

  std::string rate_unit() const override { return "tok/s"; }
  std::string rate_column() const override { return "tokens_per_second"; }
  std::string metrics_header() const override {
    return "phase,epoch,step,loss,lr,tokens,seconds,tokens_per_s";
  }

 private:
  // Throws for a sequence longer than the model's context (+1 for the shifted targets).
  void check_fit(const std::vector<std::vector<std::int32_t>>& sequences,
                 const std::string& where) const;
  // Non-padding targets of batch b of the epoch, every process's rows: whole windows of a
  // corpus, the sequences' lengths of examples.
  std::size_t batch_targets(std::size_t b) const {
    if (!corpora_[phase_]) return examples_.targets(b);
    const std::size_t size = lm_.config.phases[phase_].batch;
    return std::min(size, order_.size() - b * size) * (corpora_[phase_]->window - 1);
  }
  Batch corpus_batch(std::size_t b);
  void trace_batch(std::size_t b, std::size_t first, std::size_t rows, RowRange mine);
  std::ofstream& trace_file(std::unique_ptr<std::ofstream>& file, const std::string& path);
  std::vector<DataFingerprint> load_all_data();
  std::ofstream& trace();
  void trace_validation(std::size_t p);
  void hold_out_windows(std::size_t p);
  void add_eval_loss(const Batch& batch, double& total, std::size_t& tokens);

  LanguageModel& lm_;
  std::string run_dir_;       // the cache goes under it (empty: a temporary one)
  std::string shared_cache_;  // another process's cache, read only (empty: none)
  std::vector<std::vector<std::vector<std::int32_t>>> sequences_;   // per phase
  std::vector<std::vector<std::vector<std::int32_t>>> validation_;  // per phase
  std::vector<std::vector<Batch>> validation_batches_;              // per phase, made once
  std::vector<std::unique_ptr<CorpusPhase>> corpora_;  // per phase; null unless a corpus
  // A corpus phase's windows (indices into its starts) trained on and held out; its
  // validation file's, when it names one, are all of that file's windows.
  std::vector<std::vector<std::uint64_t>> train_windows_, held_windows_;
  std::vector<std::unique_ptr<CorpusPhase>> validation_corpora_;  // per phase, or null
  EpochBatches examples_;                                         // an example phase's epoch
  std::size_t phase_ = 0;
  std::vector<std::uint64_t> order_;           // a corpus phase's windows in the epoch's order
  std::unique_ptr<std::ofstream> trace_;       // --trace-batches FILE (rank 0's)
  std::unique_ptr<std::ofstream> rank_trace_;  // FILE.rank<r>: over MPI, the windows read
  std::vector<bool> validation_traced_;        // per phase: its held-out windows are in the trace
  Tensor<float> input_, dlogits_;
  std::size_t rank_ = 0, ranks_ = 1;  // data parallel: this process's rows of each batch
  bool has_rows_ = false;             // the last forward_loss ran rows
};

// The examples of `texts` that phase p validates on, removed from them: `fraction` of
// them (at least one), chosen by the seed alone, so a resumed run holds out the same.
std::vector<std::string> hold_out(std::vector<std::string>& texts, double fraction,
                                  std::uint64_t seed, std::size_t p) {
  if (fraction <= 0) return {};
  std::vector<std::size_t> order(texts.size());
  std::iota(order.begin(), order.end(), std::size_t(0));
  Rng rng(seed ^ (0x9e3779b97f4a7c15ull * (p + 1)));  // not the run's: training draws the same
  rng.shuffle(order.begin(), order.end());
  const std::size_t n =
      std::max<std::size_t>(1, std::size_t(std::llround(fraction * double(texts.size()))));
  std::vector<bool> held(texts.size(), false);
  for (std::size_t i = 0; i < n && i < order.size(); ++i) held[order[i]] = true;
  std::vector<std::string> kept, out;
  for (std::size_t i = 0; i < texts.size(); ++i) (held[i] ? out : kept).push_back(texts[i]);
  texts = std::move(kept);
  return out;
}

// This process's rows of batch b of a corpus phase's epoch: only their windows are read
// from the token file. Traced when asked.
Batch LanguageModelTask::corpus_batch(std::size_t b) {
  const std::size_t size = lm_.config.phases[phase_].batch;
  const std::size_t first = b * size;
  const std::size_t rows = std::min(size, order_.size() - first);
  const RowRange mine = rank_rows(rows, rank_, ranks_);
  if (!lm_.batch_trace.empty()) trace_batch(b, first, rows, mine);
  return window_batch(*corpora_[phase_], order_, first + mine.first, mine.count);
}

// The batch's line of every window in FILE (rank 0, or the single process), and over MPI
// the line of the windows this rank reads in FILE.rank<r>.
void LanguageModelTask::trace_batch(std::size_t b, std::size_t first, std::size_t rows,
                                    RowRange mine) {
  const CorpusPhase& corpus = *corpora_[phase_];
  const auto line = [&](std::ofstream& out, std::size_t from, std::size_t count) {
    out << lm_.config.phases[phase_].name << ' ' << b;
    for (std::size_t r = from; r < from + count; ++r) out << ' ' << corpus.starts[order_[r]];
    out << '\n' << std::flush;
  };
  if (rank_ == 0) {
    trace_validation(phase_);
    line(trace(), first, rows);
  }
  if (ranks_ > 1)
    line(trace_file(rank_trace_, lm_.batch_trace + ".rank" + std::to_string(rank_)),
         first + mine.first, mine.count);
}

std::ofstream& LanguageModelTask::trace() { return trace_file(trace_, lm_.batch_trace); }

std::ofstream& LanguageModelTask::trace_file(std::unique_ptr<std::ofstream>& file,
                                             const std::string& path) {
  if (!file) {
    file = std::make_unique<std::ofstream>(path, std::ios::app);
    if (!*file) throw Error(path + ": cannot write the batch trace");
  }
  return *file;
}

// Once per phase that validates (before its first batch line): the starts of the windows it
// validates on, so a benchmark outside Strata can measure the same validation loss. A validation
// file's starts index its own token file.
void LanguageModelTask::trace_validation(std::size_t p) {
  if (validation_traced_.size() <= p) validation_traced_.resize(p + 1, false);
  if (validation_traced_[p]) return;
  validation_traced_[p] = true;
  if (held_windows_[p].empty()) return;  // no validation: the trace keeps its batch lines only
  const CorpusPhase& corpus = validation_corpora_[p] ? *validation_corpora_[p] : *corpora_[p];
  std::ofstream& out = trace();
  out << lm_.config.phases[p].name << " validation";
  for (std::uint64_t w : held_windows_[p]) out << ' ' << corpus.starts[w];
  out << '\n' << std::flush;
}

// Every phase's data (and validation data), encoded, must fit the model before the
// first step, not when its turn comes (a corpus is cut into windows, so it always does).
std::vector<DataFingerprint> LanguageModelTask::load_data() {
  // Bad data leaves a new run's directory as it was: a cache this call made goes too.
  const std::string cache = run_dir_.empty() ? "" : corpus_cache_directory(run_dir_);
  std::error_code ec;
  const bool had_cache = cache.empty() || std::filesystem::exists(cache, ec);
  try {
    return load_all_data();
  } catch (const Error&) {
    if (!had_cache) std::filesystem::remove_all(cache, ec);
    throw;
  }
}

std::vector<DataFingerprint> LanguageModelTask::load_all_data() {
  const RunConfig& config = lm_.config;
  auto texts = load_phase_texts(config);
  std::vector<DataFingerprint> prints;
  corpora_.clear();
  corpora_.resize(texts.size());
  validation_corpora_.clear();
  validation_corpora_.resize(texts.size());
  train_windows_.assign(texts.size(), {});
  held_windows_.assign(texts.size(), {});
  for (std::size_t p = 0; p < texts.size(); ++p) {
    if (config.phases[p].format == "corpus") {
      corpora_[p] = std::make_unique<CorpusPhase>(
          prepare_corpus_phase(config.phases[p], *lm_.tokenizer, corpus_cache_directory(run_dir_),
                               std::size_t(lm_.model.max_seq_len), shared_cache_));
      prints.push_back(corpora_[p]->fingerprint);
      hold_out_windows(p);
    } else {
      prints.push_back(fingerprint_data(config.phases[p].name, config.phases[p].data, texts[p]));
    }
  }
  sequences_.assign(texts.size(), {});
  validation_.assign(texts.size(), {});
  validation_batches_.assign(texts.size(), {});
  for (std::size_t p = 0; p < texts.size(); ++p) {
    if (corpora_[p]) continue;
    const PhaseConfig& phase = config.phases[p];
    const std::string where =
        phase.data_mark.to_string() + ": training.phases \"" + phase.name + "\": ";
    std::vector<std::string> held = hold_out(texts[p], phase.validation_fraction, config.seed, p);
    if (!phase.validation.empty()) {
      try {
        held = load_texts(phase.validation, parse_data_format(phase.format));
      } catch (const Error& e) {
        throw Error(phase.validation_mark.to_string() + ": training.phases \"" + phase.name +
                    "\": validation: " + e.what());
      }
    }
    for (const std::string& text : texts[p]) sequences_[p].push_back(lm_.encode(text, nullptr));
    for (const std::string& text : held) validation_[p].push_back(lm_.encode(text, nullptr));
    check_fit(sequences_[p], where + phase.data + ": ");
    check_fit(validation_[p], where + "validation " +
                                  (phase.validation.empty() ? "(held out of " + phase.data + ")"
                                                            : phase.validation) +
                                  ": ");
    if (count_trainable(sequences_[p]) == 0)
      throw Error(where + phase.data + ": no example has two or more tokens: nothing to learn");
    if (!validation_[p].empty() && count_trainable(validation_[p]) == 0)
      throw Error(where + "validation: no example has two or more tokens: nothing to measure");
  }
  return prints;
}

void LanguageModelTask::check_fit(const std::vector<std::vector<std::int32_t>>& sequences,
                                  const std::string& where) const {
  const std::size_t fit = std::size_t(lm_.model.max_seq_len) + 1;
  for (std::size_t i = 0; i < sequences.size(); ++i)
    if (sequences[i].size() > fit)
      throw Error(where + "example " + std::to_string(i) + " has " +
                  std::to_string(sequences[i].size()) + " tokens, more than the " +
                  std::to_string(fit) + " that fit model.max_seq_len " +
                  std::to_string(lm_.model.max_seq_len) + " (+1 for the shifted targets)");
}

// A corpus phase's windows split into those trained on and those held out: a
// validation file's windows (a corpus read like the phase's), or `validation_fraction`
// of the phase's own, chosen by the seed alone (a resumed run holds out the same).
void LanguageModelTask::hold_out_windows(std::size_t p) {
  const PhaseConfig& phase = lm_.config.phases[p];
  const std::size_t windows = corpora_[p]->starts.size();
  std::vector<std::uint64_t> order(windows);
  std::iota(order.begin(), order.end(), std::uint64_t(0));
  if (!phase.validation.empty()) {
    PhaseConfig held = phase;
    held.name = phase.name + ".validation";
    held.data = phase.validation;
    held.sources = {phase.validation};
    held.data_mark = phase.validation_mark;
    validation_corpora_[p] = std::make_unique<CorpusPhase>(
        prepare_corpus_phase(held, *lm_.tokenizer, corpus_cache_directory(run_dir_),
                             std::size_t(lm_.model.max_seq_len), shared_cache_));
    held_windows_[p].resize(validation_corpora_[p]->starts.size());
    std::iota(held_windows_[p].begin(), held_windows_[p].end(), std::uint64_t(0));
    train_windows_[p] = std::move(order);
    return;
  }
  std::size_t n = 0;
  if (phase.validation_fraction > 0) {
    Rng rng(lm_.config.seed ^ (0x9e3779b97f4a7c15ull * (p + 1)));  // as hold_out's
    rng.shuffle(order.begin(), order.end());
    n = std::max<std::size_t>(1, std::size_t(std::llround(phase.validation_fraction * windows)));
    if (n >= windows)
      throw Error(phase.data_mark.to_string() + ": training.phases \"" + phase.name +
                  "\": " + std::to_string(windows) + " window(s): too few to hold out " +
                  std::to_string(n) + " and train on the rest");
  }
  held_windows_[p].assign(order.begin(), order.begin() + std::ptrdiff_t(n));
  train_windows_[p].assign(order.begin() + std::ptrdiff_t(n), order.end());
  std::sort(held_windows_[p].begin(), held_windows_[p].end());
  std::sort(train_windows_[p].begin(), train_windows_[p].end());  // the epoch shuffles them
}

// Adds `batch`'s summed target-token loss (eval mode) and its token count.
void LanguageModelTask::add_eval_loss(const Batch& batch, double& total, std::size_t& tokens) {
  ensure_shape(input_, std::vector<std::size_t>{batch.batch, batch.length});
  std::copy(batch.inputs.begin(), batch.inputs.end(), input_.begin());
  const LossValue loss =
      softmax_cross_entropy(lm_.model.forward(input_, Mode::eval), batch.targets, dlogits_);
  total += loss.mean * double(loss.tokens);
  tokens += loss.tokens;
}

// Mean loss per target token over the phase's validation data (its held-out windows for
// a corpus), and its exponential.
Evaluation LanguageModelTask::evaluate(std::size_t p) {
  const std::size_t batch = lm_.config.phases[p].batch;
  double total = 0;
  std::size_t tokens = 0;
  if (corpora_[p]) {
    const CorpusPhase& corpus = validation_corpora_[p] ? *validation_corpora_[p] : *corpora_[p];
    const std::vector<std::uint64_t>& windows = held_windows_[p];
    for (std::size_t first = 0; first < windows.size(); first += batch)
      add_eval_loss(window_batch(corpus, windows, first, std::min(batch, windows.size() - first)),
                    total, tokens);
  } else {
    if (validation_batches_[p].empty())
      validation_batches_[p] =
          make_batches(validation_[p], batch, std::size_t(lm_.model.max_seq_len),
                       lm_.tokenizer->pad_id(), nullptr);
    for (const Batch& b : validation_batches_[p]) add_eval_loss(b, total, tokens);
  }
  const double mean = tokens ? total / double(tokens) : 0.0;
  return {mean, std::exp(mean)};
}

// The greedy continuation of the first generation prompt (or of the first token of the
// data), at most generation.max_tokens tokens.
std::string LanguageModelTask::sample() {
  const GenerationConfig& g = lm_.config.generation;
  // Without a prompt: the data's first token, or (a corpus) the start of a document.
  std::vector<std::int32_t> prompt = {sequences_[0].empty() ? lm_.tokenizer->eos_id()
                                                            : sequences_[0][0][0]};
  if (!g.prompts.empty()) prompt = lm_.encode(g.prompts[0], nullptr);
  SamplingOptions options;
  options.max_tokens = std::size_t(g.max_tokens);
  Rng rng(g.seed);  // greedy: draws nothing
  try {
    std::vector<std::int32_t> out =
        generate(lm_.model, prompt, lm_.tokenizer->eos_id(), options, rng);
    return lm_.tokenizer->decode(prompt) + " ->" + (out.empty() ? "" : " ") +
           lm_.tokenizer->decode(out);
  } catch (const Error& e) {
    return std::string("(no sample: ") + e.what() + ")";
  }
}

}  // namespace

TrainResult train(LanguageModel& lm, Optimizer<float>& optimizer, const TrainOptions& options,
                  const Checkpoint* resume) {
  LanguageModelTask task(lm, options.out_dir, options.writes_files);
  return run_training(task, optimizer, options, resume);
}

}  // namespace strata
