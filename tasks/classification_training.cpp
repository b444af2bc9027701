// train(Classifier&, ...): the training loop of tasks/classification.hpp, in named steps.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <numeric>
#include <ostream>
#include <sstream>

#include "framework/clip.hpp"
#include "framework/denormals.hpp"
#include "framework/files.hpp"
#include "framework/loss.hpp"
#include "framework/parallel.hpp"
#include "tasks/classification.hpp"
#include "training/training_state.hpp"

namespace strata {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

class ClassifierRun {
 public:
  ClassifierRun(Classifier& c, Optimizer<float>& optimizer, const TrainOptions& options)
      : c_(c),
        optimizer_(optimizer),
        options_(options),
        data_(load_classification_data(c.task, c.config.seed)) {
    std::vector<std::string> rows;
    for (std::size_t r = 0; r < data_.train.rows(); ++r) {
      std::string bytes(
          reinterpret_cast<const char*>(data_.train.x.data() + r * data_.train.features),
          data_.train.features * sizeof(float));
      bytes.append(reinterpret_cast<const char*>(&data_.train.y[r]), sizeof(std::int32_t));
      rows.push_back(std::move(bytes));
    }
    prints_.push_back(fingerprint_data("task", c.task.data, rows));
  }

  TrainResult run(const Checkpoint* resume) {
    const ScopedFlushDenormals flush_denormals;
    const ThreadingScope threading(c_.config.threads);
    if (resume) restore(*resume);
    if (!options_.out_dir.empty()) {
      remove_stale_temporaries(options_.out_dir);
      trim_metrics(options_.out_dir, at_.metrics_rows);
      write_split();
    }
    start_ = Clock::now();
    c_.model.zero_grad();
    for (; at_.phase < c_.config.phases.size(); ++at_.phase, at_.epoch = 0) {
      const PhaseConfig& phase = c_.config.phases[at_.phase];
      for (; at_.epoch < phase.epochs; ++at_.epoch)
        if (!run_epoch(phase)) return result_;
      TrainingPosition end = snapshot(at_);
      end.phase = at_.phase + 1;
      end.epoch = 0;
      save(end);
    }
    result_.steps = at_.step;
    result_.seconds = seconds_since(start_);
    result_.finished = true;
    return result_;
  }

 private:
  std::size_t batches_per_epoch(const PhaseConfig& phase) const {
    return (data_.train.rows() + phase.batch - 1) / phase.batch;
  }

  // Parameters, optimizer state, random states and position of the checkpoint.
  void restore(const Checkpoint& resume) {
    if (!resume.data.empty() && resume.data != prints_)
      throw Error(c_.task.data +
                  ": the data changed since the checkpoint: the resumed run would "
                  "not replay the same batches. Put the data back as it was, or train a new run");
    at_ = resume.position;
    const bool fits = at_.phase < c_.config.phases.size()
                          ? at_.epoch < c_.config.phases[at_.phase].epochs &&
                                at_.next_batch <= batches_per_epoch(c_.config.phases[at_.phase])
                          : at_.phase == c_.config.phases.size() && at_.epoch == 0;
    if (!fits) throw Error("the checkpoint's training position does not fit its config");
    import_optimizer_state(optimizer_, resume, c_.model, "the checkpoint's optimizer.npz");
    if (!at_.rng.empty()) c_.rng.load(at_.rng);
    const std::vector<Rng*> generators = c_.model.random_generators();
    if (at_.layer_rngs.size() != generators.size())
      throw Error(
          "the checkpoint's layer random states do not fit the model "
          "(checkpoint from a different architecture)");
    for (std::size_t i = 0; i < generators.size(); ++i) generators[i]->load(at_.layer_rngs[i]);
  }

  // The epoch's row order: drawn from the run's Rng (replayed from its state at the
  // epoch's start when resuming inside it).
  std::vector<std::size_t> epoch_order(const PhaseConfig& phase) {
    if (at_.next_batch == 0)
      at_.epoch_rng = c_.rng.save();
    else
      c_.rng.load(at_.epoch_rng);
    std::vector<std::size_t> order(data_.train.rows());
    std::iota(order.begin(), order.end(), std::size_t(0));
    if (phase.shuffle) c_.rng.shuffle(order.begin(), order.end());
    if (at_.next_batch != 0) c_.rng.load(at_.rng);
    return order;
  }

  // false: stopped (asked to, or stop_after_steps).
  bool run_epoch(const PhaseConfig& phase) {
    const std::vector<std::size_t> order = epoch_order(phase);
    const std::size_t batches = batches_per_epoch(phase);
    const auto epoch_start = Clock::now();
    double lr = 0;
    for (; at_.next_batch < batches; ++at_.next_batch) {
      const std::size_t first = at_.next_batch * phase.batch;
      const std::size_t n = std::min(phase.batch, order.size() - first);
      lr = phase.schedule.at(at_.epoch * std::int64_t(batches) + std::int64_t(at_.next_batch),
                             phase.epochs * std::int64_t(batches));
      step(order, first, n, lr, phase);
      if (stop_here()) return false;
    }
    if (batches > 0)
      lr = phase.schedule.at((at_.epoch + 1) * std::int64_t(batches) - 1,
                             phase.epochs * std::int64_t(batches));
    finish_epoch(phase, lr, seconds_since(epoch_start));
    return true;
  }

  void step(const std::vector<std::size_t>& order, std::size_t first, std::size_t n, double lr,
            const PhaseConfig& phase) {
    const Tensor<float>& logits =
        forward_rows(c_.model, data_.train, order, first, n, Mode::train, input_);
    const LossValue loss = row_loss(logits, data_.train, order, first, logits3_, dlogits_);
    if (!std::isfinite(loss.mean))
      throw Error("training stopped at step " + std::to_string(at_.step + 1) + " (phase \"" +
                  phase.name + "\", epoch " + std::to_string(at_.epoch + 1) +
                  "): the loss is not finite; the last checkpoint on disk is kept");
    double squared_norm = 0;
    if (optimizer_.clip_norm() > 0)
      c_.model.backward(dlogits_, [&](const std::vector<Parameter<float>*>& done) {
        squared_norm += squared_grad_sum(done);
      });
    else
      c_.model.backward(dlogits_);
    optimizer_.step_scaled_and_zero(
        c_.model.parameters(), lr,
        clip_scale<float>(std::sqrt(squared_norm), optimizer_.clip_norm()));
    ++at_.step;
    at_.epoch_loss_sum += loss.sum_of_sequence_means;
    at_.epoch_sequences += n;
    at_.epoch_tokens += n;
  }

  // After a step: a periodic checkpoint, or a stop (saving where it stopped).
  bool stop_here() {
    const bool stop = options_.stop_after_steps >= 0 && at_.step >= options_.stop_after_steps;
    const bool interrupt = options_.stop_requested && options_.stop_requested();
    const bool periodic =
        c_.config.checkpoint_every > 0 && at_.step % c_.config.checkpoint_every == 0;
    if (!periodic && !stop && !interrupt) return false;
    TrainingPosition saved = snapshot(at_);
    ++saved.next_batch;
    if (periodic || interrupt) save(saved);
    if (!stop && !interrupt) return false;
    result_.steps = at_.step;
    result_.seconds = seconds_since(start_);
    result_.interrupted = interrupt;
    return true;
  }

  TrainingPosition snapshot(TrainingPosition position) const {
    position.rng = c_.rng.save();
    position.layer_rngs.clear();
    for (const Rng* generator : c_.model.random_generators())
      position.layer_rngs.push_back(generator->save());
    return position;
  }

  void save(const TrainingPosition& position) {
    if (options_.out_dir.empty()) return;
    for (const Parameter<float>* p : c_.model.parameters())
      if (!std::all_of(p->value.begin(), p->value.end(), [](float v) { return std::isfinite(v); }))
        throw Error("training stopped at step " + std::to_string(position.step) + ": parameter " +
                    p->name + " is not finite; the last checkpoint on disk is kept");
    Checkpoint ck;
    ck.config_text = c_.config.text;
    ck.config_file = c_.config.file;
    ck.seed = c_.config.seed;
    ck.parameters = export_parameters(c_.model);
    ck.optimizer_state = export_optimizer_state(optimizer_);
    ck.optimizer_steps = optimizer_.steps();
    ck.position = position;
    ck.data = prints_;
    save_checkpoint(options_.out_dir, ck);
  }

  void finish_epoch(const PhaseConfig& phase, double lr, double seconds) {
    const EpochRecord record{
        phase.name, at_.epoch + 1,
        at_.step,   at_.epoch_sequences ? at_.epoch_loss_sum / double(at_.epoch_sequences) : 0.0,
        lr,         at_.epoch_tokens,
        seconds};
    result_.epochs.push_back(record);
    if (!options_.out_dir.empty()) append_metrics(options_.out_dir, record);
    ++at_.metrics_rows;
    at_.next_batch = 0;
    at_.epoch_loss_sum = 0;
    at_.epoch_sequences = at_.epoch_tokens = 0;
    if (options_.log)
      *options_.log << "[" << phase.name << "] epoch " << record.epoch << "/" << phase.epochs
                    << "  loss " << std::fixed << std::setprecision(4) << record.loss << "\n"
                    << std::flush;
  }

  // DIR/split.json: which rows were trained on and which held out.
  void write_split() const {
    const nlohmann::json split = {{"data", c_.task.data},
                                  {"seed", c_.config.seed},
                                  {"validation_fraction", c_.task.validation_fraction},
                                  {"train", data_.split.train},
                                  {"held_out", data_.split.held_out}};
    make_directories(options_.out_dir);
    write_file_atomic((std::filesystem::path(options_.out_dir) / "split.json").string(),
                      split.dump() + "\n");
  }

  Classifier& c_;
  Optimizer<float>& optimizer_;
  const TrainOptions& options_;
  ClassificationData data_;
  std::vector<DataFingerprint> prints_;
  TrainingPosition at_;
  TrainResult result_;
  Clock::time_point start_;
  Tensor<float> input_, logits3_, dlogits_;
};

}  // namespace

TrainResult train(Classifier& classifier, Optimizer<float>& optimizer, const TrainOptions& options,
                  const Checkpoint* resume) {
  ClassifierRun run(classifier, optimizer, options);
  return run.run(resume);
}

}  // namespace strata
