#include "tasks/language_model_training.hpp"

#include <iomanip>
#include <sstream>

#include "framework/loss.hpp"
#include "tasks/batch.hpp"
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

  BatchLoss forward_loss(std::size_t b, const TrainingForward& forward) override {
    const Batch& batch = batches_[b];
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
  LanguageModel& lm_;
  std::vector<std::vector<std::vector<std::int32_t>>> sequences_;  // per phase
  std::vector<Batch> batches_;                                     // of the epoch
  Tensor<float> input_, dlogits_;
};

// Every phase's data, encoded, must fit the model before the first step, not when its
// turn comes.
std::vector<DataFingerprint> LanguageModelTask::load_data() {
  const RunConfig& config = lm_.config;
  const auto texts = load_phase_texts(config);
  std::vector<DataFingerprint> prints;
  for (std::size_t p = 0; p < texts.size(); ++p)
    prints.push_back(fingerprint_data(config.phases[p].name, config.phases[p].data, texts[p]));
  sequences_.assign(texts.size(), {});
  for (std::size_t p = 0; p < texts.size(); ++p)
    for (const std::string& text : texts[p]) sequences_[p].push_back(lm_.encode(text, nullptr));
  for (std::size_t p = 0; p < texts.size(); ++p) {
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
  LanguageModelTask task(lm);
  return run_training(task, optimizer, options, resume);
}

}  // namespace strata
