#include "models/trainer.hpp"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "framework/clip.hpp"
#include "framework/denormals.hpp"
#include "framework/files.hpp"
#include "framework/loss.hpp"
#include "framework/parallel.hpp"
#include "models/batch.hpp"
#include "models/training_state.hpp"

namespace strata {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The data each phase trains on, checked against what the checkpoint was trained on.
std::vector<DataFingerprint> fingerprint_phases(const RunConfig& config,
                                                const std::vector<std::vector<std::string>>& texts,
                                                const Checkpoint* resume) {
  std::vector<DataFingerprint> prints;
  for (std::size_t p = 0; p < texts.size(); ++p)
    prints.push_back(fingerprint_data(config.phases[p].name, config.phases[p].data, texts[p]));
  if (!resume || resume->data.empty()) return prints;  // older checkpoints did not record it
  for (std::size_t p = 0; p < prints.size(); ++p) {
    const DataFingerprint* then = p < resume->data.size() ? &resume->data[p] : nullptr;
    if (then && *then == prints[p]) continue;
    auto describe = [](const DataFingerprint& d) {
      std::ostringstream out;
      out << d.examples << " examples, " << d.bytes << " bytes, FNV-1a " << std::hex
          << std::setw(16) << std::setfill('0') << d.fnv1a64;
      return out.str();
    };
    throw Error(prints[p].path + ": the data of phase \"" + prints[p].phase +
                "\" changed since the checkpoint (now " + describe(prints[p]) +
                (then ? "; then " + describe(*then) : "") +
                "): the resumed run would not replay the same batches. Put the data back as it "
                "was, or train a new run on it with another --out");
  }
  return prints;
}

void keep_freed_memory() {
  static const bool done = [] {
    mallopt(M_MMAP_MAX, 0);  // every block from the heap (a threshold stops at 32 MiB)
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    return true;
  }();
  (void)done;
}

// One step's optimizer update, run alongside the next forward pass, layer by layer: the
// parameters first used by layer i + 1 are updated while layer i computes (Model::forward
// with Alongside tasks, the optimizer's parts), so every layer still reads updated
// weights, and with two threads the update no longer runs alone between backward and
// forward. Each element's arithmetic is unchanged. finish() applies what is pending
// before anything else reads the parameters (a checkpoint, the end of training).
class UpdateAlongsideForward {
 public:
  UpdateAlongsideForward(Model<float>& model, Optimizer<float>& optimizer)
      : model_(model),
        optimizer_(optimizer),
        next_layer_{[this](std::size_t i) -> std::size_t {
                      return i + 1 < model_.layers().size() ? prepare(i + 1) : 0;
                    },
                    [this](std::size_t task) { optimizer_.part_task(task); }} {}

  // Instead of optimizer.step_scaled_and_zero(parameters, lr, grad_scale) now.
  void defer(double lr, float grad_scale) {
    optimizer_.begin_parts();
    pending_ = {true, lr, grad_scale};
  }

  // The training forward pass, finishing a deferred update on the way. Only for short
  // batches: inside a pool task a layer's forward runs on one thread, which costs
  // nothing when its products are too small to split anyway (the batch-1 recipe: ~20
  // positions; 2-thread run 5.8 -> 5.4 s) but takes both threads away from large ones
  // (batch 16: -10% tokens/s; d=512: -20% GFLOP/s). Those update first, on both threads.
  const Tensor<float>& forward(const Tensor<float>& input) {
    if (pending_.active && input.size() > kMaxPositions) finish();
    if (!pending_.active) return model_.forward(input, Mode::train);
    run_part(0);  // layer 0 reads its parameters at once
    const Tensor<float>& out = model_.forward(input, Mode::train, next_layer_);
    pending_.active = false;
    return out;
  }

  void finish() {
    if (!pending_.active) return;
    for (std::size_t i = 0; i < model_.layers().size(); ++i) run_part(i);
    pending_.active = false;
  }

 private:
  std::size_t prepare(std::size_t layer) {
    return optimizer_.prepare_part(model_.parameters_first_used_by(layer), pending_.lr,
                                   pending_.grad_scale);
  }
  void run_part(std::size_t layer) {
    parallel_for(prepare(layer), [this](std::size_t task) { optimizer_.part_task(task); });
  }

  static constexpr std::size_t kMaxPositions = 64;  // batch x length

  Model<float>& model_;
  Optimizer<float>& optimizer_;
  Alongside next_layer_;
  struct {
    bool active = false;
    double lr = 0;
    float grad_scale = 1;
  } pending_;
};

}  // namespace

Checkpoint make_checkpoint(const LanguageModel& lm, const Optimizer<float>& optimizer,
                           const TrainingPosition& position) {
  Checkpoint c;
  c.config_text = lm.config.text;
  c.config_file = lm.config.file;
  c.seed = lm.config.seed;
  c.data_overrides = lm.config.data_overrides;
  c.vocabulary = lm.tokenizer.serialize();
  c.parameters = lm.export_parameters();
  c.optimizer_state = export_optimizer_state(optimizer);
  c.optimizer_steps = optimizer.steps();
  c.position = position;
  return c;
}

TrainResult train(LanguageModel& lm, Optimizer<float>& optimizer, const TrainOptions& options,
                  const Checkpoint* resume) {
  const RunConfig& config = lm.config;
  const ScopedFlushDenormals flush_denormals;  // see denormals.hpp: same losses, no assists
  // Strata's pool splits the step's work (Adam, the gradient norm, independent
  // products); BLAS runs on one thread (see ThreadingScope).
  const ThreadingScope threading(config.threads);
  // Batches of different lengths resize the layers' buffers every step, and large
  // models release dead buffers (Layer::release_output) for the next layer to take.
  // glibc would serve large blocks with fresh mmaps (and trim the heap top after
  // frees), each page faulted in again: ~9% of batch-16 training was page faults and
  // unmaps, and at d=512 the released 32 MiB FFN buffers cost more. Kept in the heap
  // instead, freed blocks are reused at once; peak RSS is unchanged (the heap never
  // holds more than the largest step needed). Process-wide.
  keep_freed_memory();
  const auto texts = load_phase_texts(config);
  const std::vector<DataFingerprint> data_prints = fingerprint_phases(config, texts, resume);
  std::vector<std::vector<std::vector<std::int32_t>>> sequences(texts.size());
  for (std::size_t p = 0; p < texts.size(); ++p)
    for (const std::string& text : texts[p]) sequences[p].push_back(lm.encode(text, nullptr));
  // Every phase's data must fit the model before the first step, not when its turn comes.
  for (std::size_t p = 0; p < texts.size(); ++p) {
    const PhaseConfig& phase = config.phases[p];
    const std::string where = phase.data_mark.to_string() + ": training.phases \"" + phase.name +
                              "\": " + phase.data + ": ";
    const std::size_t fit = std::size_t(lm.model.max_seq_len) + 1;
    for (std::size_t i = 0; i < sequences[p].size(); ++i)
      if (sequences[p][i].size() > fit)
        throw Error(where + "example " + std::to_string(i) + " has " +
                    std::to_string(sequences[p][i].size()) + " tokens, more than the " +
                    std::to_string(fit) + " that fit model.max_seq_len " +
                    std::to_string(lm.model.max_seq_len) + " (+1 for the shifted targets)");
    if (count_trainable(sequences[p]) == 0)
      throw Error(where + "no example has two or more tokens: nothing to learn");
  }

  TrainingPosition at;
  if (resume) {
    at = resume->position;
    import_optimizer_state(optimizer, *resume, lm.model,
                           options.out_dir.empty()
                               ? "optimizer state"
                               : checkpoint_directory(options.out_dir) + "/optimizer.npz");
    if (!at.rng.empty()) lm.rng.load(at.rng);  // an epoch that starts now draws from here
    const std::vector<Rng*> generators = lm.model.random_generators();
    if (at.layer_rngs.size() != generators.size())
      throw Error("the checkpoint holds " + std::to_string(at.layer_rngs.size()) +
                  " layer random states, the model has " + std::to_string(generators.size()) +
                  " (checkpoint from a different architecture)");
    for (std::size_t i = 0; i < generators.size(); ++i) generators[i]->load(at.layer_rngs[i]);
  }
  // The run's and the layers' generator states, saved with a checkpoint.
  auto snapshot_random_state = [&lm](TrainingPosition& position) {
    position.rng = lm.rng.save();
    position.layer_rngs.clear();
    for (const Rng* generator : lm.model.random_generators())
      position.layer_rngs.push_back(generator->save());
  };
  TrainResult result;
  const auto start = Clock::now();
  std::int64_t total_steps = 0, steps_done_before = at.step;
  auto steps_of_phase = [&](std::size_t p) {
    const std::size_t batch = config.phases[p].batch;
    return config.phases[p].epochs *
           std::int64_t((count_trainable(sequences[p]) + batch - 1) / batch);
  };
  for (std::size_t p = 0; p < config.phases.size(); ++p) total_steps += steps_of_phase(p);
  if (resume) {  // a position that does not fit the run: refuse rather than misbehave
    const bool fits = at.phase < config.phases.size()
                          ? at.epoch < config.phases[at.phase].epochs &&
                                std::int64_t(at.next_batch) <=
                                    steps_of_phase(at.phase) / config.phases[at.phase].epochs
                          : at.phase == config.phases.size() && at.epoch == 0 && at.next_batch == 0;
    if (!fits || at.step < 0)
      throw Error("the checkpoint's training position (0-based: phase " + std::to_string(at.phase) +
                  ", epoch " + std::to_string(at.epoch) + ", batch " +
                  std::to_string(at.next_batch) + ") does not fit its config");
  }
  if (!options.out_dir.empty()) {
    remove_stale_temporaries(options.out_dir);
    trim_metrics(options.out_dir, at.metrics_rows);
  }

  // Divergence stops the run with the step and what is kept; the checkpoint on disk
  // is never replaced by a non-finite state.
  std::int64_t saved_step = resume ? resume->position.step : -1;
  auto stop_diverged = [&](const std::string& what, const PhaseConfig& phase) {
    std::string kept = "no checkpoint was saved";
    if (options.out_dir.empty())
      kept = "nothing is saved (no run directory)";
    else if (saved_step >= 0)
      kept = "the last good checkpoint, from step " + std::to_string(saved_step) + ", is kept in " +
             checkpoint_directory(options.out_dir);
    throw Error("training stopped at step " + std::to_string(at.step + 1) + " (phase \"" +
                phase.name + "\", epoch " + std::to_string(at.epoch + 1) + "): " + what + "; " +
                kept);
  };
  // At more than one thread each step's update runs alongside the next forward pass.
  const bool overlap_update = options.overlap_update && config.threads > 1;
  UpdateAlongsideForward update(lm.model, optimizer);
  auto checkpoint = [&](const TrainingPosition& position, const PhaseConfig& phase) {
    update.finish();
    if (options.out_dir.empty()) return;
    for (const Parameter<float>* p : lm.model.parameters())
      if (!std::all_of(p->value.begin(), p->value.end(),
                       [](float v) { return std::isfinite(v); })) {
        --at.step;  // the step that made them so
        stop_diverged("parameter " + p->name + " is not finite after the update", phase);
      }
    Checkpoint c = make_checkpoint(lm, optimizer, position);
    c.data = data_prints;
    save_checkpoint(options.out_dir, c);
    saved_step = position.step;
  };

  Tensor<float> input, dlogits;
  // The optimizer leaves the gradients zeroed after each step (step_scaled_and_zero).
  lm.model.zero_grad();
  for (; at.phase < config.phases.size(); ++at.phase, at.epoch = 0) {
    const PhaseConfig& phase = config.phases[at.phase];
    const std::int64_t phase_steps = steps_of_phase(at.phase);
    for (; at.epoch < phase.epochs; ++at.epoch) {
      // The epoch's shuffle is drawn from the run's Rng; its state at the epoch start
      // is saved so that a resumed run replays the same order.
      if (at.next_batch == 0)
        at.epoch_rng = lm.rng.save();
      else
        lm.rng.load(at.epoch_rng);
      const std::vector<Batch> batches =
          make_batches(sequences[at.phase], phase.batch, std::size_t(lm.model.max_seq_len),
                       lm.tokenizer.pad_id(), phase.shuffle ? &lm.rng : nullptr);
      if (at.next_batch != 0) lm.rng.load(at.rng);
      const auto epoch_start = Clock::now();
      const std::int64_t epoch_first_step =
          at.epoch * std::int64_t(batches.size());  // within the phase
      double lr = 0;
      for (; at.next_batch < batches.size(); ++at.next_batch) {
        const Batch& batch = batches[at.next_batch];
        ensure_shape(input, std::vector<std::size_t>{batch.batch, batch.length});
        std::copy(batch.inputs.begin(), batch.inputs.end(), input.begin());
        const Tensor<float>& logits = update.forward(input);
        const LossValue loss = softmax_cross_entropy(logits, batch.targets, dlogits);
        if (!std::isfinite(loss.mean))
          stop_diverged("the loss is not finite (" + std::to_string(loss.mean) + ")", phase);
        lm.model.release_output();  // the logits are dead once dlogits holds their gradient
        // The clipping norm is summed layer by layer as backward completes each one's
        // gradients, while they are still in cache (a pass of its own, after backward,
        // read them back from memory: 7% of the batch-1 recipe). Then one pass scales,
        // steps and zeroes them.
        double squared_norm = 0;
        if (optimizer.clip_norm() > 0)
          lm.model.backward(dlogits, [&](const std::vector<Parameter<float>*>& completed) {
            squared_norm += squared_grad_sum(completed);
          });
        else
          lm.model.backward(dlogits);
        lr = phase.schedule.at(epoch_first_step + std::int64_t(at.next_batch), phase_steps);
        const float grad_scale = clip_scale<float>(std::sqrt(squared_norm), optimizer.clip_norm());
        if (overlap_update) {
          update.defer(lr, grad_scale);
        } else {
          optimizer.step_scaled_and_zero(lm.model.parameters(), lr, grad_scale);
        }
        ++at.step;
        at.epoch_loss_sum += loss.sum_of_sequence_means;
        at.epoch_sequences += batch.batch;
        at.epoch_tokens += loss.tokens;

        const bool stop = options.stop_after_steps >= 0 && at.step >= options.stop_after_steps;
        const bool interrupt = options.stop_requested && options.stop_requested();
        const bool periodic = config.checkpoint_every > 0 && at.step % config.checkpoint_every == 0;
        if (periodic || stop || interrupt) {
          TrainingPosition saved = at;
          ++saved.next_batch;
          snapshot_random_state(saved);
          if (periodic || interrupt) checkpoint(saved, phase);
          if (stop || interrupt) {
            update.finish();
            result.steps = at.step;
            result.seconds = seconds_since(start);
            result.interrupted = interrupt;
            if (options.log && options.progress_bar) *options.log << "\n";
            return result;
          }
        }
      }
      // The epoch's last learning rate (also when a resume starts after its last batch).
      if (!batches.empty())
        lr = phase.schedule.at(epoch_first_step + std::int64_t(batches.size()) - 1, phase_steps);
      EpochRecord record{phase.name,
                         at.epoch + 1,
                         at.step,
                         at.epoch_sequences ? at.epoch_loss_sum / double(at.epoch_sequences) : 0.0,
                         lr,
                         at.epoch_tokens,
                         seconds_since(epoch_start)};
      result.epochs.push_back(record);
      if (!options.out_dir.empty()) append_metrics(options.out_dir, record);
      ++at.metrics_rows;
      if (options.log) {
        const double elapsed = seconds_since(start);
        const double done = double(at.step - steps_done_before);
        const double eta = done > 0 ? elapsed / done * double(total_steps - at.step) : 0;
        std::ostringstream line;
        line << "[" << phase.name << "] epoch " << record.epoch << "/" << phase.epochs << "  loss "
             << std::fixed << std::setprecision(4) << record.loss << "  " << std::setprecision(0)
             << (record.seconds > 0 ? double(record.tokens) / record.seconds : 0.0)
             << " tok/s  ETA " << format_duration(eta);
        if (options.progress_bar)
          *options.log << "\r\033[K" << line.str() << std::flush;
        else
          *options.log << line.str() << "\n" << std::flush;
      }
      at.next_batch = 0;
      at.epoch_loss_sum = 0;
      at.epoch_sequences = 0;
      at.epoch_tokens = 0;
    }
    TrainingPosition end_of_phase = at;
    end_of_phase.phase = at.phase + 1;
    end_of_phase.epoch = 0;
    snapshot_random_state(end_of_phase);
    checkpoint(end_of_phase, phase);
    if (options.log && options.progress_bar) *options.log << "\n";
  }
  update.finish();
  result.steps = at.step;
  result.seconds = seconds_since(start);
  result.finished = true;
  return result;
}

}  // namespace strata
