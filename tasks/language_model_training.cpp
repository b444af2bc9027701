#include "tasks/language_model_training.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <numeric>
#include <sstream>

#include "framework/loss.hpp"
#include "tasks/batch.hpp"
#include "tasks/generator.hpp"
#include "text/dataset.hpp"
#include "training/data_parallel.hpp"
#include "training/training_state.hpp"

namespace strata {

namespace {

class LanguageModelTask : public TrainingTask {
 public:
  explicit LanguageModelTask(LanguageModel& lm) : lm_(lm) {}

  const RunConfig& config() const override { return lm_.config; }
  Model<float>& model() override { return lm_.model; }
  Rng& rng() override { return lm_.rng; }

  std::vector<DataFingerprint> load_data() override;

  std::size_t batches_per_epoch(std::size_t p) const override {
    const std::size_t batch = lm_.config.phases[p].batch;
    return (count_trainable(sequences_[p]) + batch - 1) / batch;
  }

  void begin_epoch(std::size_t p, Rng* shuffle) override {
    batches_ = make_batches(sequences_[p], lm_.config.phases[p].batch,
                            std::size_t(lm_.model.max_seq_len), lm_.tokenizer->pad_id(), shuffle);
  }

  double batch_weight(std::size_t b) const override { return double(count_targets(batches_[b])); }

  bool shard(std::size_t rank, std::size_t ranks) override {
    rank_ = rank;
    ranks_ = ranks;
    return true;
  }

  BatchLoss forward_loss(std::size_t b, const TrainingForward& forward) override {
    if (ranks_ > 1) return forward_loss_of_rows(shard_rows(batches_[b], rank_, ranks_), b, forward);
    return forward_loss_of_rows(batches_[b], b, forward);
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

  // Forward and loss of `batch`: all of batch b, or this process's rows of it.
  BatchLoss forward_loss_of_rows(const Batch& batch, std::size_t b,
                                 const TrainingForward& forward) {
    has_rows_ = batch.batch > 0;
    const std::size_t batch_items = ranks_ > 1 ? count_targets(batches_[b]) : 0;
    if (!has_rows_) return {0, 0, 0, 0, batch_items};
    ensure_shape(input_, std::vector<std::size_t>{batch.batch, batch.length});
    std::copy(batch.inputs.begin(), batch.inputs.end(), input_.begin());
    const Tensor<float>& logits = forward(input_);
    const LossValue loss = softmax_cross_entropy(logits, batch.targets, dlogits_);
    return {loss.mean, loss.sum_of_sequence_means, batch.batch, loss.tokens,
            ranks_ > 1 ? batch_items : loss.tokens};
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

  bool has_validation(std::size_t p) const override { return !validation_[p].empty(); }
  Evaluation evaluate(std::size_t p) override;
  std::string metric_name() const override { return "perplexity"; }
  std::string sample() override;

  std::string rate_unit() const override { return "tok/s"; }
  std::string rate_column() const override { return "tokens_per_second"; }
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
  // Throws for a sequence longer than the model's context (+1 for the shifted targets).
  void check_fit(const std::vector<std::vector<std::int32_t>>& sequences,
                 const std::string& where) const;

  LanguageModel& lm_;
  std::vector<std::vector<std::vector<std::int32_t>>> sequences_;   // per phase
  std::vector<std::vector<std::vector<std::int32_t>>> validation_;  // per phase
  std::vector<std::vector<Batch>> validation_batches_;              // per phase, made once
  std::vector<Batch> batches_;                                      // of the epoch
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

// Every phase's data (and validation data), encoded, must fit the model before the
// first step, not when its turn comes.
std::vector<DataFingerprint> LanguageModelTask::load_data() {
  const RunConfig& config = lm_.config;
  auto texts = load_phase_texts(config);
  std::vector<DataFingerprint> prints;
  for (std::size_t p = 0; p < texts.size(); ++p)
    prints.push_back(fingerprint_data(config.phases[p].name, config.phases[p].data, texts[p]));
  sequences_.assign(texts.size(), {});
  validation_.assign(texts.size(), {});
  validation_batches_.assign(texts.size(), {});
  for (std::size_t p = 0; p < texts.size(); ++p) {
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

// Mean loss per target token over the phase's validation data, and its exponential.
Evaluation LanguageModelTask::evaluate(std::size_t p) {
  if (validation_batches_[p].empty())
    validation_batches_[p] =
        make_batches(validation_[p], lm_.config.phases[p].batch, std::size_t(lm_.model.max_seq_len),
                     lm_.tokenizer->pad_id(), nullptr);
  double total = 0;
  std::size_t tokens = 0;
  for (const Batch& batch : validation_batches_[p]) {
    ensure_shape(input_, std::vector<std::size_t>{batch.batch, batch.length});
    std::copy(batch.inputs.begin(), batch.inputs.end(), input_.begin());
    const LossValue loss =
        softmax_cross_entropy(lm_.model.forward(input_, Mode::eval), batch.targets, dlogits_);
    total += loss.mean * double(loss.tokens);
    tokens += loss.tokens;
  }
  const double mean = tokens ? total / double(tokens) : 0.0;
  return {mean, std::exp(mean)};
}

// The greedy continuation of the first generation prompt (or of the first token of the
// data), at most generation.max_tokens tokens.
std::string LanguageModelTask::sample() {
  const GenerationConfig& g = lm_.config.generation;
  std::vector<std::int32_t> prompt = g.prompts.empty()
                                         ? std::vector<std::int32_t>{sequences_[0][0][0]}
                                         : lm_.encode(g.prompts[0], nullptr);
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
  LanguageModelTask task(lm);
  return run_training(task, optimizer, options, resume);
}

}  // namespace strata
