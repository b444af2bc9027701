#include "training/trainer.hpp"

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
#include "training/data_parallel.hpp"
#include "training/training_state.hpp"

namespace strata {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// What each phase trains on (`prints`), checked against what the checkpoint was trained on.
std::vector<DataFingerprint> check_fingerprints(std::vector<DataFingerprint> prints,
                                                const Checkpoint* resume) {
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

namespace {

// One run of run_training(): the phases, their epochs and steps, validation,
// checkpoints and the logs, each a named step. `at_` is where training stands (what a
// checkpoint saves).
class RunLoop {
 public:
  RunLoop(TrainingTask& task, Optimizer<float>& optimizer, const TrainOptions& options)
      : task_(task),
        model_(task.model()),
        config_(task.config()),
        optimizer_(optimizer),
        options_(options),
        writes_(options.writes_files && !options.out_dir.empty()),
        log_(options.writes_files ? options.log : nullptr),
        update_(task.model(), optimizer),
        parallel_(task.model()) {}

  TrainResult run(const Checkpoint* resume);

 private:
  void restore(const Checkpoint& resume);
  void check_position() const;
  void open_logs();
  std::size_t steps_per_epoch(std::size_t p) const;
  std::int64_t steps_of_phase(std::size_t p) const;
  bool run_phase();
  bool run_epoch(const PhaseConfig& phase, std::int64_t phase_steps);
  void step(std::size_t first, std::size_t end, double lr, const PhaseConfig& phase);
  void parallel_step(std::size_t first, std::size_t end, double lr, const PhaseConfig& phase);
  double update(double lr);
  void start_parallel();
  std::uint64_t data_hash() const;
  std::string fault_context() const;
  void gradients_complete();
  double gradient_norm() const;
  void log_step(const PhaseConfig& phase, double loss, double lr, double norm, double rate);
  bool validate(const PhaseConfig& phase, bool epoch_end);
  void keep_best(const PhaseConfig& phase, double loss);
  void print_sample();
  bool stop_here(const PhaseConfig& phase);
  TrainingPosition position_now() const;
  void snapshot_random_state(TrainingPosition& position) const;
  void checkpoint(const TrainingPosition& position, const PhaseConfig& phase,
                  const std::string& run_dir);
  [[noreturn]] void stop_diverged(const std::string& what, const PhaseConfig& phase);
  void end_epoch(const PhaseConfig& phase, double lr, Clock::time_point epoch_start);
  void log_epoch(const PhaseConfig& phase, const EpochRecord& record) const;
  std::string out_file(const char* name) const;

  TrainingTask& task_;
  Model<float>& model_;
  const RunConfig& config_;
  Optimizer<float>& optimizer_;
  const TrainOptions& options_;
  const bool writes_;  // this process writes the run directory
  std::ostream* const log_;
  std::vector<DataFingerprint> data_prints_;
  TrainingPosition at_;
  TrainResult result_;
  Clock::time_point start_;
  std::int64_t total_steps_ = 0, steps_done_before_ = 0;
  std::int64_t saved_step_ = -1;  // of the checkpoint on disk (-1: none)
  // At more than one thread each step's update runs alongside the next forward pass.
  bool overlap_update_ = false;
  UpdateAlongsideForward update_;
  TrainingForward forward_ = [this](const Tensor<float>& input) -> const Tensor<float>& {
    return update_.forward(input);
  };
  double squared_norm_ = 0;   // of the step's gradients, summed as backward completes them
  bool accumulated_ = false;  // the step added up several batches' gradients
  // DIR/steps.csv's rows not yet written: written at each epoch's end and before each
  // checkpoint (a run that fails before either leaves no file, as metrics.csv).
  std::string steps_rows_;
  void write_steps();
  std::string epoch_validation_;  // the epoch-end evaluation, for the epoch's progress line
  bool stopped_early_ = false;    // the phase in progress ended by its patience
  // Over MPI: this process's rows of each batch, the gradients summed across processes.
  DataParallel parallel_;
  bool stop_agreed_ = false;  // the processes' common stop decision for this step
};

TrainResult RunLoop::run(const Checkpoint* resume) {
  const ScopedFlushDenormals flush_denormals;  // see denormals.hpp: same losses, no assists
  // Strata's pool splits the step's work (Adam, the gradient norm, independent
  // products); BLAS runs on one thread (see ThreadingScope).
  const ThreadingScope threading(config_.threads);
  // Batches of different lengths resize the layers' buffers every step, and large
  // models release dead buffers (Layer::release, framework/chain.hpp) for the next layer to take.
  // glibc would serve large blocks with fresh mmaps (and trim the heap top after
  // frees), each page faulted in again: ~9% of batch-16 training was page faults and
  // unmaps, and at d=512 the released 32 MiB FFN buffers cost more. Kept in the heap
  // instead, freed blocks are reused at once; peak RSS is unchanged (the heap never
  // holds more than the largest step needed). Process-wide.
  keep_freed_memory();
  data_prints_ = check_fingerprints(task_.load_data(), resume);
  if (resume) restore(*resume);
  start_ = Clock::now();
  steps_done_before_ = at_.step;
  for (std::size_t p = 0; p < config_.phases.size(); ++p) total_steps_ += steps_of_phase(p);
  if (resume) check_position();
  if (parallel_.active()) start_parallel();
  if (writes_) open_logs();
  saved_step_ = resume ? resume->position.step : -1;
  overlap_update_ = options_.overlap_update && config_.threads > 1;
  if (options_.save_initial && !resume && !config_.phases.empty())
    checkpoint(position_now(), config_.phases.front(), out_file("initial"));
  // The optimizer leaves the gradients zeroed after each step (step_scaled_and_zero).
  model_.zero_grad();
  for (; at_.phase < config_.phases.size(); ++at_.phase, at_.epoch = 0)
    if (!run_phase()) return result_;
  update_.finish();
  write_steps();
  result_.steps = at_.step;
  result_.seconds = seconds_since(start_);
  result_.finished = true;
  return result_;
}

std::string RunLoop::out_file(const char* name) const {
  return (std::filesystem::path(options_.out_dir) / name).string();
}

// The run directory's logs, their rows after the checkpoint's position removed (this run
// writes them again), and the task's files.
void RunLoop::open_logs() {
  remove_stale_temporaries(options_.out_dir);
  trim_metrics(options_.out_dir, at_.metrics_rows);
  trim_csv(out_file("steps.csv"), std::size_t(at_.step));
  trim_csv(out_file("validation.csv"), at_.validation_rows);
  task_.write_run_files(options_.out_dir);
}

void RunLoop::write_steps() {
  if (steps_rows_.empty()) return;
  steps_rows_.pop_back();  // append_csv ends the row
  append_csv(out_file("steps.csv"),
             "step,phase,epoch,loss,learning_rate,grad_norm," + task_.rate_column(), steps_rows_);
  steps_rows_.clear();
}

// The checkpoint's position, optimizer state and random states.
void RunLoop::restore(const Checkpoint& resume) {
  at_ = resume.position;
  import_optimizer_state(optimizer_, resume, model_,
                         options_.out_dir.empty()
                             ? "optimizer state"
                             : checkpoint_directory(options_.out_dir) + "/optimizer.npz");
  if (!at_.rng.empty()) task_.rng().load(at_.rng);  // an epoch that starts now draws from here
  const std::vector<Rng*> generators = model_.random_generators();
  if (at_.layer_rngs.size() != generators.size())
    throw Error("the checkpoint holds " + std::to_string(at_.layer_rngs.size()) +
                " layer random states, the model has " + std::to_string(generators.size()) +
                " (checkpoint from a different architecture)");
  for (std::size_t i = 0; i < generators.size(); ++i) generators[i]->load(at_.layer_rngs[i]);
}

// A position that does not fit the run is refused rather than misbehave.
void RunLoop::check_position() const {
  const bool fits =
      at_.phase < config_.phases.size()
          ? at_.epoch < config_.phases[at_.phase].epochs &&
                at_.next_batch <= task_.batches_per_epoch(at_.phase)
          : at_.phase == config_.phases.size() && at_.epoch == 0 && at_.next_batch == 0;
  if (!fits || at_.step < 0)
    throw Error("the checkpoint's training position (0-based: phase " + std::to_string(at_.phase) +
                ", epoch " + std::to_string(at_.epoch) + ", batch " +
                std::to_string(at_.next_batch) + ") does not fit its config");
}

// Optimizer steps per epoch of phase p: its batches, `accumulate` to a step.
std::size_t RunLoop::steps_per_epoch(std::size_t p) const {
  const std::size_t k = config_.phases[p].accumulate;
  return (task_.batches_per_epoch(p) + k - 1) / k;
}

std::int64_t RunLoop::steps_of_phase(std::size_t p) const {
  return config_.phases[p].epochs * std::int64_t(steps_per_epoch(p));
}

// The phase's epochs (until its patience runs out), then its checkpoint. false: the run
// stopped.
bool RunLoop::run_phase() {
  const PhaseConfig& phase = config_.phases[at_.phase];
  const std::int64_t phase_steps = steps_of_phase(at_.phase);
  stopped_early_ = false;
  for (; at_.epoch < phase.epochs && !stopped_early_; ++at_.epoch)
    if (!run_epoch(phase, phase_steps)) return false;
  if (stopped_early_ && log_)
    *log_ << (options_.progress_bar ? "\n" : "") << "[" << phase.name << "] stopped early at step "
          << at_.step << ": no better validation loss in " << config_.patience
          << " evaluations (best " << std::fixed << std::setprecision(4) << at_.best_loss
          << " at step " << at_.best_step << ")\n"
          << std::flush;
  // The next phase validates on its own data: its best starts afresh.
  at_.best_step = -1;
  at_.best_loss = 0;
  at_.evaluations_since_best = 0;
  TrainingPosition end_of_phase = at_;
  end_of_phase.phase = at_.phase + 1;
  end_of_phase.epoch = 0;
  end_of_phase.next_batch = 0;
  snapshot_random_state(end_of_phase);
  checkpoint(end_of_phase, phase, options_.out_dir);
  if (log_ && options_.progress_bar) *log_ << "\n";
  return true;
}

// One epoch's steps from at_.next_batch on, then its validation. false: the run stopped.
bool RunLoop::run_epoch(const PhaseConfig& phase, std::int64_t phase_steps) {
  // The epoch's shuffle is drawn from the run's Rng; its state at the epoch start
  // is saved so that a resumed run replays the same order.
  Rng& rng = task_.rng();
  if (at_.next_batch == 0)
    at_.epoch_rng = rng.save();
  else
    rng.load(at_.epoch_rng);
  task_.begin_epoch(at_.phase, phase.shuffle ? &rng : nullptr);
  const std::size_t batches = task_.batches_per_epoch(at_.phase);
  const std::size_t k = phase.accumulate;
  if (at_.next_batch != 0) rng.load(at_.rng);
  const auto epoch_start = Clock::now();
  // In the phase:
  const std::int64_t epoch_first_step = at_.epoch * std::int64_t(steps_per_epoch(at_.phase));
  double lr = 0;
  // Every eval_every steps, and at the epoch's end unless its last step was one of them.
  auto due = [this] { return config_.eval_every > 0 && at_.step % config_.eval_every == 0; };
  while (at_.next_batch < batches) {
    lr = phase.schedule.at(epoch_first_step + std::int64_t(at_.next_batch / k), phase_steps);
    const std::size_t end = std::min(batches, at_.next_batch + k);
    step(at_.next_batch, end, lr, phase);
    at_.next_batch = end;
    if (due() && validate(phase, at_.next_batch == batches)) break;
    if (config_.generation.every > 0 && at_.step % config_.generation.every == 0) print_sample();
    if (stop_here(phase)) return false;
  }
  // The epoch's last learning rate (also when a resume starts after its last batch).
  if (batches > 0)
    lr = phase.schedule.at(epoch_first_step + std::int64_t((batches - 1) / k), phase_steps);
  if (!due() && !stopped_early_) validate(phase, true);
  end_epoch(phase, lr, epoch_start);
  return true;
}

// One optimizer step over batches [first, end): forward, loss, backward of each (their
// gradients add up), then the update.
void RunLoop::step(std::size_t first, std::size_t end, double lr, const PhaseConfig& phase) {
  if (parallel_.active()) return parallel_step(first, end, lr, phase);
  const auto step_start = Clock::now();
  accumulated_ = end - first > 1;
  double weight = 0;  // of all the step's batches together
  if (accumulated_)
    for (std::size_t b = first; b < end; ++b) weight += task_.batch_weight(b);
  // The gradient norm is summed layer by layer as backward completes each one's
  // gradients, while they are still in cache (a pass of its own, after backward,
  // read them back from memory: 7% of the batch-1 recipe). Then one pass scales,
  // steps and zeroes them.
  squared_norm_ = 0;
  Model<float>::GradientsDone sum_norm;
  if (!accumulated_)
    sum_norm = [this](const std::vector<Parameter<float>*>& completed) {
      squared_norm_ += squared_grad_sum(completed);
    };
  double loss_sum = 0;
  std::size_t examples = 0, items = 0;
  for (std::size_t b = first; b < end; ++b) {
    const BatchLoss loss = task_.forward_loss(b, forward_);
    if (!std::isfinite(loss.mean))
      stop_diverged("the loss is not finite (" + std::to_string(loss.mean) + ")", phase);
    task_.backward(accumulated_ ? float(task_.batch_weight(b) / weight) : 1.0f, sum_norm);
    loss_sum += loss.sum;
    examples += loss.examples;
    items += loss.items;
  }
  gradients_complete();
  const double norm = update(lr);
  at_.epoch_loss_sum += loss_sum;
  at_.epoch_sequences += examples;
  at_.epoch_tokens += items;
  const double seconds = seconds_since(step_start);
  log_step(phase, examples ? loss_sum / double(examples) : 0.0, lr, norm,
           seconds > 0 ? double(items) / seconds : 0.0);
}

// The clipped optimizer step on the step's (summed) gradients; returns their norm.
double RunLoop::update(double lr) {
  const double norm = gradient_norm();
  const float grad_scale = clip_scale<float>(norm, optimizer_.clip_norm());
  if (overlap_update_)
    update_.defer(lr, grad_scale);
  else
    optimizer_.step_scaled_and_zero(model_.parameters(), lr, grad_scale);
  ++at_.step;
  return norm;
}

// Over MPI, before the first step: the task trains its rows only, and every process
// must hold rank 0's config, data and initial parameters.
void RunLoop::start_parallel() {
  const Distributed& world = Distributed::world();
  if (!task_.shard(std::size_t(world.rank()), std::size_t(world.size())))
    throw Error("train over MPI (" + std::to_string(world.size()) +
                " ranks): this task is not data parallel; run it in a single process");
  parallel_.check_start(config_.text, data_hash());
}

// One step over MPI (training/data_parallel.hpp): this process's rows of batches
// [first, end) forward and backward, the gradients summed across processes in buckets
// during the last batch's backward (the earlier ones add up locally, without
// communication: PyTorch DDP's no_sync), then the same update everywhere. The loss and
// the stop decision are the processes' common ones.
void RunLoop::parallel_step(std::size_t first, std::size_t end, double lr,
                            const PhaseConfig& phase) {
  const auto step_start = Clock::now();
  const bool stop = options_.stop_requested && options_.stop_requested();
  Distributed::world().set_fault_context(fault_context());
  double step_items = 0;  // the step's targets over every rank (accumulating only)
  if (end - first > 1)
    for (std::size_t b = first; b < end; ++b) step_items += task_.batch_weight(b);
  const Model<float>::GradientsDone sum = [this](const std::vector<Parameter<float>*>& done) {
    parallel_.completed(done);
  };
  for (std::size_t b = first; b < end; ++b) {
    const BatchLoss local = task_.forward_loss(b, forward_);
    const bool last = b + 1 == end;
    parallel_.add_batch(local);
    if (last) parallel_.begin_step(stop);
    if (local.examples > 0)
      task_.backward(
          DataParallel::share(local, end - first > 1 ? step_items : double(local.batch_items)),
          last ? sum : Model<float>::GradientsDone{});
    else if (last)
      parallel_.no_rows();  // its gradients so far (zero, or earlier batches') go to the sums
  }
  const StepTotals totals = parallel_.finish();
  if (!std::isfinite(totals.loss.mean))
    stop_diverged("the loss is not finite (" + std::to_string(totals.loss.mean) + ")", phase);
  accumulated_ = false;
  squared_norm_ = parallel_.squared_grad_norm();
  const double norm = update(lr);
  stop_agreed_ = totals.stop;
  at_.epoch_loss_sum += totals.loss.sum;
  at_.epoch_sequences += totals.loss.examples;
  at_.epoch_tokens += totals.loss.items;
  const double seconds = seconds_since(step_start);
  log_step(phase, totals.loss.examples ? totals.loss.sum / double(totals.loss.examples) : 0.0, lr,
           norm, seconds > 0 ? double(totals.loss.items) / seconds : 0.0);
}

// What a process that loses the others says (Distributed::peers_lost).
std::string RunLoop::fault_context() const {
  std::string context = "training stopped in step " + std::to_string(at_.step + 1);
  if (options_.out_dir.empty()) return context;
  return context + (saved_step_ >= 0
                        ? "; the checkpoint of step " + std::to_string(saved_step_) + " in " +
                              checkpoint_directory(options_.out_dir) + " is intact"
                        : "; no checkpoint was saved yet");
}

// What start_parallel compares across processes: every phase's data fingerprint.
std::uint64_t RunLoop::data_hash() const {
  std::uint64_t hash = fnv1a(nullptr, 0);
  for (const DataFingerprint& d : data_prints_) {
    hash = fnv1a(d.path.data(), d.path.size(), hash);
    for (std::uint64_t v : {d.examples, d.bytes, d.fnv1a64}) hash = fnv1a(&v, sizeof v, hash);
  }
  return hash;
}

// Every parameter's gradient of the step is final here, before the norm and the update
// read it (processes training together would combine their gradients here).
void RunLoop::gradients_complete() {}

// The step's global gradient L2 norm: summed during backward for one batch; after
// several (whose gradients added up) or gradients changed after backward
// (gradients_complete), read from the gradients.
double RunLoop::gradient_norm() const {
  return accumulated_ ? grad_norm(model_.parameters()) : std::sqrt(squared_norm_);
}

// DIR/steps.csv's row of the step just taken.
void RunLoop::log_step(const PhaseConfig& phase, double loss, double lr, double norm, double rate) {
  if (!writes_) return;
  std::ostringstream row;
  row << at_.step << ',' << phase.name << ',' << at_.epoch + 1 << ',' << std::setprecision(9)
      << loss << ',' << lr << ',' << norm << ',' << std::setprecision(6) << rate << '\n';
  steps_rows_ += row.str();
}

// A validation evaluation (if the phase has validation data): DIR/validation.csv, the
// log, the best checkpoint, the patience. true: the phase stops here (its patience ran out).
bool RunLoop::validate(const PhaseConfig& phase, bool epoch_end) {
  if (!task_.has_validation(at_.phase)) return false;
  update_.finish();  // the model as the step left it
  const Evaluation e = task_.evaluate(at_.phase);
  const ValidationRecord record{at_.step, phase.name, at_.epoch + 1, e.loss, e.metric};
  result_.validations.push_back(record);
  if (writes_) {
    std::ostringstream row;
    row << record.step << ',' << record.phase << ',' << record.epoch << ',' << std::setprecision(9)
        << record.loss << ',' << record.metric;
    append_csv(out_file("validation.csv"), "step,phase,epoch,loss," + task_.metric_name(),
               row.str());
  }
  ++at_.validation_rows;
  std::ostringstream text;
  text << "val loss " << std::fixed << std::setprecision(4) << e.loss << "  " << task_.metric_name()
       << " " << e.metric;
  if (epoch_end)
    epoch_validation_ = text.str();
  else if (log_)
    *log_ << (options_.progress_bar ? "\r\033[K" : "") << "[" << phase.name << "] step " << at_.step
          << "  " << text.str() << "\n"
          << std::flush;
  keep_best(phase, e.loss);
  stopped_early_ = config_.patience > 0 && at_.evaluations_since_best >= config_.patience;
  return stopped_early_;
}

// A better validation loss than the phase's best so far: DIR/best/ gets the checkpoint
// of this position (written as DIR/checkpoint is: swapped in whole).
void RunLoop::keep_best(const PhaseConfig& phase, double loss) {
  if (at_.best_step >= 0 && !(loss < at_.best_loss)) {
    ++at_.evaluations_since_best;
    return;
  }
  if (!std::isfinite(loss)) return;
  at_.best_loss = loss;
  at_.best_step = at_.step;
  at_.evaluations_since_best = 0;
  // Every process: checkpoint() compares the parameters across processes first.
  checkpoint(position_now(), phase, out_file("best"));
}

// A greedy sample of the model as it stands (language models), beside the progress.
void RunLoop::print_sample() {
  if (!log_) return;
  update_.finish();
  const std::string text = task_.sample();
  if (!text.empty())
    *log_ << (options_.progress_bar ? "\r\033[K" : "") << "[sample, step " << at_.step << "] "
          << text << "\n"
          << std::flush;
}

// After a step: a periodic checkpoint, or a stop (stop_after_steps, a stop request)
// with the checkpoint of where it stopped. true: the run stops here.
bool RunLoop::stop_here(const PhaseConfig& phase) {
  const bool stop = options_.stop_after_steps >= 0 && at_.step >= options_.stop_after_steps;
  const bool requested =
      parallel_.active() ? stop_agreed_ : options_.stop_requested && options_.stop_requested();
  const bool interrupt =
      requested || (options_.stop_at_step >= 0 && at_.step >= options_.stop_at_step);
  const bool periodic = config_.checkpoint_every > 0 && at_.step % config_.checkpoint_every == 0;
  if (parallel_.active() && !periodic && at_.step % DataParallel::kCheckEvery == 0) {
    update_.finish();
    parallel_.check_parameters(at_.step);
  }
  if (!periodic && !stop && !interrupt) return false;
  if (periodic || interrupt) checkpoint(position_now(), phase, options_.out_dir);
  if (!stop && !interrupt) return false;
  update_.finish();
  write_steps();
  result_.steps = at_.step;
  result_.seconds = seconds_since(start_);
  result_.interrupted = requested;
  if (log_ && options_.progress_bar) *log_ << "\n";
  return true;
}

// Where training stands after the step just taken, with the random states.
TrainingPosition RunLoop::position_now() const {
  TrainingPosition position = at_;
  snapshot_random_state(position);
  return position;
}

// The run's and the layers' generator states, saved with a checkpoint.
void RunLoop::snapshot_random_state(TrainingPosition& position) const {
  position.rng = task_.rng().save();
  position.layer_rngs.clear();
  for (const Rng* generator : model_.random_generators())
    position.layer_rngs.push_back(generator->save());
}

// The checkpoint on disk is never replaced by a non-finite state. The rows of the logs
// it counts are on disk before it.
void RunLoop::checkpoint(const TrainingPosition& position, const PhaseConfig& phase,
                         const std::string& run_dir) {
  update_.finish();
  if (parallel_.active()) parallel_.check_parameters(position.step);
  if (options_.out_dir.empty()) return;
  for (const Parameter<float>* p : model_.parameters())
    if (!std::all_of(p->value.begin(), p->value.end(), [](float v) { return std::isfinite(v); })) {
      --at_.step;  // the step that made them so
      stop_diverged("parameter " + p->name + " is not finite after the update", phase);
    }
  if (!writes_) {  // another process (rank 0) writes it
    if (run_dir == options_.out_dir) saved_step_ = position.step;
    return;
  }
  write_steps();
  Checkpoint c = task_.checkpoint_base();
  c.optimizer_state = export_optimizer_state(optimizer_);
  c.optimizer_steps = optimizer_.steps();
  c.position = position;
  c.data = data_prints_;
  save_checkpoint(run_dir, c);
  if (run_dir == options_.out_dir) saved_step_ = position.step;
}

// Divergence stops the run with the step and what is kept.
void RunLoop::stop_diverged(const std::string& what, const PhaseConfig& phase) {
  std::string kept = "no checkpoint was saved";
  if (options_.out_dir.empty())
    kept = "nothing is saved (no run directory)";
  else if (saved_step_ >= 0)
    kept = "the last good checkpoint, from step " + std::to_string(saved_step_) + ", is kept in " +
           checkpoint_directory(options_.out_dir);
  throw Error("training stopped at step " + std::to_string(at_.step + 1) + " (phase \"" +
              phase.name + "\", epoch " + std::to_string(at_.epoch + 1) + "): " + what + "; " +
              kept);
}

// The epoch's record: result, metrics.csv, the log; the position moves to the next epoch.
void RunLoop::end_epoch(const PhaseConfig& phase, double lr, Clock::time_point epoch_start) {
  EpochRecord record{phase.name,
                     at_.epoch + 1,
                     at_.step,
                     at_.epoch_sequences ? at_.epoch_loss_sum / double(at_.epoch_sequences) : 0.0,
                     lr,
                     at_.epoch_tokens,
                     seconds_since(epoch_start)};
  result_.epochs.push_back(record);
  if (writes_) {
    append_metrics(options_.out_dir, task_.metrics_header(), task_.metrics_row(record));
    write_steps();
  }
  ++at_.metrics_rows;
  log_epoch(phase, record);
  epoch_validation_.clear();
  at_.next_batch = 0;
  at_.epoch_loss_sum = 0;
  at_.epoch_sequences = 0;
  at_.epoch_tokens = 0;
}

void RunLoop::log_epoch(const PhaseConfig& phase, const EpochRecord& record) const {
  if (!log_) return;
  const double elapsed = seconds_since(start_);
  const double done = double(at_.step - steps_done_before_);
  const double eta = done > 0 ? elapsed / done * double(total_steps_ - at_.step) : 0;
  std::ostringstream line;
  line << "[" << phase.name << "] epoch " << record.epoch << "/" << phase.epochs << "  loss "
       << std::fixed << std::setprecision(4) << record.loss << "  ";
  if (!epoch_validation_.empty()) line << epoch_validation_ << "  ";
  line << std::setprecision(0)
       << (record.seconds > 0 ? double(record.tokens) / record.seconds : 0.0) << " "
       << task_.rate_unit() << "  ETA " << format_duration(eta);
  if (options_.progress_bar)
    *log_ << "\r\033[K" << line.str() << std::flush;
  else
    *log_ << line.str() << "\n" << std::flush;
}

}  // namespace

std::string TrainingTask::metrics_row(const EpochRecord& r) const {
  std::ostringstream out;
  out << r.phase << ',' << r.epoch << ',' << r.step << ',' << std::setprecision(9) << r.loss << ','
      << r.lr << ',' << r.tokens << ',' << r.seconds << ','
      << (r.seconds > 0 ? double(r.tokens) / r.seconds : 0.0);
  return out.str();
}

TrainResult run_training(TrainingTask& task, Optimizer<float>& optimizer,
                         const TrainOptions& options, const Checkpoint* resume) {
  RunLoop loop(task, optimizer, options);
  return loop.run(resume);
}

}  // namespace strata
