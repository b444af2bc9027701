#include "tasks/language_model_training.hpp"

#include <fstream>
#include <iomanip>
#include <memory>
#include <sstream>

#include "framework/loss.hpp"
#include "tasks/batch.hpp"
#include "tasks/corpus_phase.hpp"
#include "training/training_state.hpp"

namespace strata {

namespace {

class LanguageModelTask : public TrainingTask {
 public:
  LanguageModelTask(LanguageModel& lm, std::string run_dir)
      : lm_(lm), run_dir_(std::move(run_dir)) {}

  const RunConfig& config() const override { return lm_.config; }
  Model<float>& model() override { return lm_.model; }
  Rng& rng() override { return lm_.rng; }

  std::vector<DataFingerprint> load_data() override;

  std::size_t batches_per_epoch(std::size_t p) const override {
    const std::size_t batch = lm_.config.phases[p].batch;
    const std::size_t items =
        corpora_[p] ? corpora_[p]->starts.size() : count_trainable(sequences_[p]);
    return (items + batch - 1) / batch;
  }

  void begin_epoch(std::size_t p, Rng* shuffle) override {
    phase_ = p;
    if (corpora_[p]) {  // the order of the windows; their batches are read as they come
      order_.resize(corpora_[p]->starts.size());
      for (std::size_t i = 0; i < order_.size(); ++i) order_[i] = i;
      if (shuffle) shuffle->shuffle(order_.begin(), order_.end());
      return;
    }
    batches_ = make_batches(sequences_[p], lm_.config.phases[p].batch,
                            std::size_t(lm_.model.max_seq_len), lm_.tokenizer->pad_id(), shuffle);
  }

  BatchLoss forward_loss(std::size_t b, const TrainingForward& forward) override {
    if (corpora_[phase_]) batches_.assign(1, corpus_batch(b));
    const Batch& batch = corpora_[phase_] ? batches_[0] : batches_[b];
    ensure_shape(input_, std::vector<std::size_t>{batch.batch, batch.length});
    std::copy(batch.inputs.begin(), batch.inputs.end(), input_.begin());
    const Tensor<float>& logits = forward(input_);
    const LossValue loss = softmax_cross_entropy(logits, batch.targets, dlogits_);
    return {loss.mean, loss.sum_of_sequence_means, batch.batch, loss.tokens};
  }

  void backward(float scale, const Model<float>::GradientsDone& completed) override {
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

  std::string rate_unit() const override { return "tok/s"; }
  std::string metrics_header() const override {
    return "phase,epoch,step,loss,lr,tokens,seconds,tokens_per_s";
  }
  std::string metrics_row(const EpochRecord& r) const override {
    std::ostringstream out;
    out << r.phase << ',' << r.epoch << ',' << r.step << ',' << std::setprecision(9) << r.loss
        << ',' << r.lr << ',' << r.tokens << ',' << r.seconds << ','
        << (r.seconds > 0 ? double(r.tokens) / r.seconds : 0.0);
    return out.str();
  }

 private:
  Batch corpus_batch(std::size_t b);

  LanguageModel& lm_;
  std::string run_dir_;  // the cache goes under it (empty: a temporary one)
  std::vector<std::vector<std::vector<std::int32_t>>> sequences_;  // per phase
  std::vector<std::unique_ptr<CorpusPhase>> corpora_;  // per phase; null unless a corpus
  std::vector<Batch> batches_;  // of the epoch (a corpus phase: the batch in use)
  std::size_t phase_ = 0;
  std::vector<std::uint64_t> order_;  // a corpus phase's windows in the epoch's order
  std::unique_ptr<std::ofstream> trace_;
  Tensor<float> input_, dlogits_;
};

// The batch of windows b of a corpus phase's epoch, traced when asked.
Batch LanguageModelTask::corpus_batch(std::size_t b) {
  const CorpusPhase& corpus = *corpora_[phase_];
  const std::size_t size = lm_.config.phases[phase_].batch;
  const std::size_t first = b * size;
  const std::size_t rows = std::min(size, order_.size() - first);
  if (!lm_.batch_trace.empty()) {
    if (!trace_) {
      trace_ = std::make_unique<std::ofstream>(lm_.batch_trace, std::ios::app);
      if (!*trace_) throw Error(lm_.batch_trace + ": cannot write the batch trace");
    }
    *trace_ << lm_.config.phases[phase_].name << ' ' << b;
    for (std::size_t r = 0; r < rows; ++r) *trace_ << ' ' << corpus.starts[order_[first + r]];
    *trace_ << '\n' << std::flush;
  }
  return window_batch(corpus, order_, first, rows);
}

// Every phase's data, encoded, must fit the model before the first step, not when its
// turn comes (a corpus is cut into windows, so it always does).
std::vector<DataFingerprint> LanguageModelTask::load_data() {
  const RunConfig& config = lm_.config;
  const auto texts = load_phase_texts(config);
  std::vector<DataFingerprint> prints;
  corpora_.clear();
  corpora_.resize(texts.size());
  for (std::size_t p = 0; p < texts.size(); ++p) {
    if (config.phases[p].format == "corpus") {
      corpora_[p] = std::make_unique<CorpusPhase>(
          prepare_corpus_phase(config.phases[p], *lm_.tokenizer, corpus_cache_directory(run_dir_),
                               std::size_t(lm_.model.max_seq_len)));
      prints.push_back(corpora_[p]->fingerprint);
    } else {
      prints.push_back(fingerprint_data(config.phases[p].name, config.phases[p].data, texts[p]));
    }
  }
  sequences_.assign(texts.size(), {});
  for (std::size_t p = 0; p < texts.size(); ++p)
    for (const std::string& text : texts[p]) sequences_[p].push_back(lm_.encode(text, nullptr));
  for (std::size_t p = 0; p < texts.size(); ++p) {
    if (corpora_[p]) continue;
    const PhaseConfig& phase = config.phases[p];
    const std::string where = phase.data_mark.to_string() + ": training.phases \"" + phase.name +
                              "\": " + phase.data + ": ";
    const std::size_t fit = std::size_t(lm_.model.max_seq_len) + 1;
    for (std::size_t i = 0; i < sequences_[p].size(); ++i)
      if (sequences_[p][i].size() > fit)
        throw Error(where + "example " + std::to_string(i) + " has " +
                    std::to_string(sequences_[p][i].size()) + " tokens, more than the " +
                    std::to_string(fit) + " that fit model.max_seq_len " +
                    std::to_string(lm_.model.max_seq_len) + " (+1 for the shifted targets)");
    if (count_trainable(sequences_[p]) == 0)
      throw Error(where + "no example has two or more tokens: nothing to learn");
  }
  return prints;
}

}  // namespace

TrainResult train(LanguageModel& lm, Optimizer<float>& optimizer, const TrainOptions& options,
                  const Checkpoint* resume) {
  LanguageModelTask task(lm, options.out_dir);
  return run_training(task, optimizer, options, resume);
}

}  // namespace strata
