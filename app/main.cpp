// The `strata` command line: check, layers, train, generate, chat, evaluate, plot,
// gradcheck, check-layer (generate and chat in chat.cpp, evaluate in evaluate.cpp, plot
// in plot.cpp).
// Every failure prints one clear message to stderr and exits non-zero: 2 for a usage
// error (an unknown command or option, an option value out of range), 1 for the rest,
// including output that standard output could not take (a full disk, a closed pipe).
// Every command takes `--plugin PATH` (repeatable): extra layer and optimizer libraries, loaded
// before anything else (a config's own `plugins:` are loaded with the config, a checkpoint's when
// restored). Numeric options are checked like the config keys they override, with the same ranges
// (run_config_key).
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include "app/chat.hpp"
#include "app/evaluate.hpp"
#include "app/plot.hpp"
#include "framework/blas.hpp"
#include "framework/conformance.hpp"
#include "framework/distributed.hpp"
#include "framework/files.hpp"
#include "framework/grad_check.hpp"
#include "framework/parallel.hpp"
#include "framework/plugin.hpp"
#include "framework/registry.hpp"
#include "framework/signals.hpp"
#include "framework/text.hpp"
#include "optimizers/optimizer.hpp"
#include "optimizers/optimizer_registry.hpp"
#include "tasks/classification.hpp"
#include "tasks/generator.hpp"
#include "tasks/language_model.hpp"
#include "tasks/run.hpp"
#include "text/dataset.hpp"
#include "training/config_overrides.hpp"
#include "training/run_config.hpp"
#include "training/run_directory.hpp"
#include "training/trainer.hpp"

namespace fs = std::filesystem;
using namespace strata;

namespace {

// As strict as the config file: an integer is digits with an optional sign, a number is
// finite and decimal (no nan, inf, hex or surrounding spaces).
std::optional<double> parse_option_value(const std::string& text, bool integer) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return std::nullopt;
  if (integer) {
    const std::size_t digits = (text[0] == '-' || text[0] == '+') ? 1 : 0;
    if (digits == text.size() || text.find_first_not_of("0123456789", digits) != std::string::npos)
      return std::nullopt;
    errno = 0;
    const long long v = std::strtoll(text.c_str(), nullptr, 10);
    if (errno == ERANGE) return std::nullopt;
    return double(v);
  }
  if (text.find_first_of("xXpP") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// A CLI11 check that a value is what the config key `spec` accepts: its type and range.
CLI::Validator accepts(const KeySpec& spec) {
  const bool integer = spec.type == KeyType::integer;
  const std::string range =
      std::isinf(spec.max) ? ">= " + plain_number(spec.min)
                           : "in [" + plain_number(spec.min) + ", " + plain_number(spec.max) + "]";
  const std::string expected = std::string(integer ? "an integer " : "a finite number ") + range;
  const double min = spec.min, max = spec.max;
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        const std::optional<double> v = parse_option_value(text, integer);
        if (v && *v >= min && *v <= max) return "";
        return "must be " + expected + ", got " + text;
      },
      range);
}

std::map<std::string, std::string> parse_data_overrides(const std::vector<std::string>& items) {
  std::map<std::string, std::string> out;
  for (const std::string& item : items) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      throw Error("--data expects PHASE=PATH, got \"" + item + "\"");
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

// --plugin PATH, for every command.
void load_cli_plugins(const std::vector<std::string>& paths) {
  for (const std::string& path : paths) {
    try {
      load_plugin(path);
    } catch (const Error& e) {
      throw Error(std::string("--plugin ") + e.what());
    }
  }
}

// The config's sample prompts, answered after training. The run is saved by then: a
// prompt that cannot be answered (no known word, too long) is a warning, not a failure.
void answer_sample_prompts(LanguageModel& lm) {
  Rng rng(lm.config.generation.seed);
  const SamplingOptions options = sampling_from(lm.config.generation);
  for (const std::string& prompt : lm.config.generation.prompts) {
    try {
      const std::string reply = answer(lm, prompt, options, rng);
      std::cout << prompt << " -> " << reply << "\n";
    } catch (const Error& e) {
      std::cerr << "strata: warning: generation.prompts: \"" << prompt
                << "\" not answered: " << e.what() << "\n";
    }
  }
}

// check for a classification config: the task's data is read and split too.
int check_classifier(const std::string& config_path, RunConfig config) {
  const Classifier c = Classifier::create(std::move(config));
  const ClassificationData data = load_classification_data(c.task, c.config.seed);
  auto optimizer = make_optimizer<float>(c.config.optimizer);
  std::cout << config_path << ": OK\n"
            << "task: classification, " << c.task.features << " features, " << c.task.classes
            << " classes; " << data.train.rows() << " rows to train on, " << data.held_out.rows()
            << " held out\n"
            << c.model.summary() << "optimizer: " << optimizer->type() << "\n";
  for (const PhaseConfig& p : c.config.phases)
    std::cout << "phase " << p.name << ": " << p.epochs << " epochs, batch " << p.batch << ", lr "
              << p.schedule.lr << "\n";
  return 0;
}

int command_check(const std::string& config_path, const std::vector<std::string>& data) {
  RunConfig config = load_run_config(config_path, parse_data_overrides(data));
  if (is_classification(config)) return check_classifier(config_path, std::move(config));
  load_config_plugins(config);
  // The vocabulary comes from the phases' data; without phases the model section must
  // give vocab_size itself. build_model refuses a model over the memory budget before
  // allocating the layer that passes it.
  Rng rng(config.seed);
  std::unique_ptr<Tokenizer> vocabulary;
  if (config.phases.empty())
    choose_tokenizer(config.tokenizer);  // validated even with no data to build it from
  else
    vocabulary = build_tokenizer(config);
  const std::int64_t vocab_size = vocabulary ? std::int64_t(vocabulary->size()) : 0;
  const Model<float> model = build_model<float>(config.model, vocab_size, rng);
  require_vocabulary_output(model, config.model);
  auto optimizer = make_optimizer<float>(config.optimizer);
  std::cout << config_path << ": OK\n";
  if (vocab_size) std::cout << "vocabulary: " << vocab_size << " tokens (from the phases' data)\n";
  std::cout << model.summary();
  std::cout << "optimizer: " << optimizer->type() << "\n";
  for (const PhaseConfig& p : config.phases)
    std::cout << "phase " << p.name << ": " << p.data << ", " << p.epochs << " epochs, batch "
              << p.batch << ", lr " << p.schedule.lr << "\n";
  if (vocabulary)
    for (const std::string& warning : unanswerable_prompts(config, *vocabulary))
      std::cerr << "strata: warning: " << warning << "\n";
  return 0;
}

struct TokenizerArgs {
  std::string config, out;
  std::vector<std::string> data;
};

// Builds the config's tokenizer from its phases' data, as `train` would, and writes its
// file for a config to name (tokenizer: {type: ..., model: FILE}).
int command_tokenizer(const TokenizerArgs& args) {
  RunConfig config = load_run_config(args.config, parse_data_overrides(args.data));
  if (is_classification(config))
    throw Error(args.config + ": a classification run has no tokenizer");
  load_config_plugins(config);
  if (config.phases.empty())
    throw Error(args.config + ": training.phases is empty: no data to build the tokenizer from");
  const std::unique_ptr<Tokenizer> tokenizer = build_tokenizer(config);
  const TokenizerFiles files = tokenizer->files();
  if (files.size() != 1)
    throw Error("the " + tokenizer->type() + " tokenizer is " + std::to_string(files.size()) +
                " files, not one: --out FILE takes one");
  write_file_atomic(args.out, files.begin()->second);
  std::cout << args.out << ": " << tokenizer->type() << " tokenizer, " << tokenizer->size()
            << " tokens (from the phases' data)\n";
  if (tokenizer->type() == "sentencepiece")
    std::cout << "use it with: tokenizer: {type: sentencepiece, model: " << args.out << "}\n";
  return 0;
}

// A registry's types with their config keys, the key names in one column as wide as
// the longest (at least 12).
template <class Info>
void print_types(const std::vector<const Info*>& types) {
  std::size_t width = 11;
  for (const Info* info : types)
    for (const KeySpec& key : info->schema) width = std::max(width, key.name.size());
  for (const Info* info : types) {
    std::cout << info->type << "  -  " << info->summary;
    if (info->origin != "built-in") std::cout << "  [" << info->origin << "]";
    std::cout << "\n";
    for (const KeySpec& key : info->schema) {
      std::cout << "    " << std::left << std::setw(int(width) + 1) << key.name << std::setw(20)
                << std::string(to_string(key.type)).substr(0, 19) << std::setw(18)
                << (key.default_value
                        ? "= " + (key.default_value->empty() ? "\"\"" : *key.default_value)
                        : "(required)")
                << key.help << "\n";
    }
  }
}

int command_layers() {
  print_types(layer_registry().all());
  std::cout << "\nEvery layer also takes: name (string), repeat (integer).\n\nOptimizers:\n";
  print_types(optimizer_registry().all());
  return 0;
}

struct TrainArgs {
  std::string config;
  std::string out;
  std::string resume;
  std::int64_t seed = -1;
  int threads = 0;
  std::vector<std::string> data;
  std::vector<std::string> sets;   // --set PATH=VALUE
  std::string init_from;           // --init-from DIR
  std::string trace_batches;       // --trace-batches FILE
  bool save_initial = false;       // --save-initial
  std::int64_t stop_at_step = -1;  // --stop-at-step
};

// `path` quoted for a shell when it needs to be.
std::string shell_word(const std::string& path) {
  if (!path.empty() && path.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                              "0123456789_./-+=:,@") == std::string::npos)
    return path;
  std::string quoted = "'";
  for (char c : path) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

bool same_directory(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (fs::equivalent(a, b, ec)) return true;
  return fs::weakly_canonical(a, ec) == fs::weakly_canonical(b, ec);
}

// --resume DIR continues DIR's run; --resume SRC --out DST forks: DST continues from a
// copy of SRC's checkpoint. `out` becomes the directory trained into, held by `run_dir`.
Run resume_run(const TrainArgs& args, std::string& out, RunDirectoryLock& run_dir) {
  if (!args.config.empty() || args.seed >= 0 || !args.data.empty() || !args.sets.empty() ||
      !args.init_from.empty())
    throw Error(
        "--resume continues a run with its own config, seed and data: drop the CONFIG, "
        "--seed, --data, --set and --init-from arguments");
  const bool fork = !out.empty() && !same_directory(out, args.resume);
  const bool writer = Distributed::world().rank() == 0;  // over MPI, rank 0 alone writes
  if (!fork) {
    out = args.resume;
    if (fs::is_directory(out) && writer) run_dir = lock_run_directory(out);  // before reading it
  }
  Run run = Run::resume(args.resume);
  const Checkpoint& resume = *run.checkpoint();
  if (fork && writer) {
    run_dir = claim_new_run_directory(out);
    save_checkpoint(out, resume);
    for (const char* log : {"metrics.csv", "steps.csv", "validation.csv"}) {
      const fs::path from = fs::path(args.resume) / log;
      if (fs::exists(from)) fs::copy_file(from, fs::path(out) / log);
    }
    std::cout << "forking " << args.resume << " at step " << resume.position.step << " into " << out
              << "\n";
  } else {
    std::cout << "resuming " << args.resume << " at step " << resume.position.step << "\n";
  }
  return run;
}

// A new run of CONFIG into `out` (default runs/<config's name>), held by `run_dir`.
Run start_run(const TrainArgs& args, std::string& out, RunDirectoryLock& run_dir) {
  if (args.config.empty()) throw Error("train needs a CONFIG file (or --resume DIR)");
  RunConfig config = load_run_config(args.config, parse_data_overrides(args.data), args.sets);
  if (args.seed >= 0) config.seed = std::uint64_t(args.seed);
  if (config.phases.empty())
    throw Error(args.config + ": training.phases is empty: nothing to train");
  if (out.empty()) out = "runs/" + fs::path(args.config).stem().string();
  // Refuses a checkpoint or anything else there at once; a directory it creates is
  // removed again if the run fails before writing to it. Over MPI rank 0 alone writes.
  if (Distributed::world().rank() == 0) run_dir = claim_new_run_directory(out);
  const RunConfig overridden = config;  // names a --set in errors about the model
  try {
    return args.init_from.empty() ? Run::start(std::move(config))
                                  : Run::start_from(std::move(config), args.init_from);
  } catch (const ConfigError& e) {
    if (args.sets.empty()) throw;
    throw Error(name_override(e, overridden, args.sets));
  }
}

// DIR/loss.png, as `strata plot DIR` draws it. The training succeeded whatever happens
// here: a missing or failing gnuplot is one note on stderr, never a failed run.
void plot_after_training(const std::string& out) {
  try {
    PlotArgs plot;
    plot.dir = out;
    command_plot(plot);
  } catch (const std::exception& e) {
    std::cout << std::flush;
    std::cerr << "strata: note: no loss plot: " << e.what() << "\n";
  }
}

int command_train(const TrainArgs& args) {
  RunDirectoryLock run_dir;  // held until the process ends: one process per run directory
  std::string out = args.out;
  std::optional<Run> run;
  if (args.resume.empty())
    run = start_run(args, out, run_dir);
  else
    run = resume_run(args, out, run_dir);
  if (args.threads > 0) run->config().threads = args.threads;
  const Distributed& world = Distributed::world();
  if (world.parallel() && !run->language_model())
    throw Error("train over MPI (" + std::to_string(world.size()) +
                " ranks): only language-model tasks are data parallel; run this one in a "
                "single process");
  if (LanguageModel* lm = run->language_model()) lm->batch_trace = args.trace_batches;
  std::cout << "model: " << run->describe() << ", seed " << run->config().seed << ", threads "
            << run->config().threads
            << (world.parallel() ? ", ranks " + std::to_string(world.size()) : std::string())
            << "\n";
  TrainOptions options;
  options.out_dir = out;
  options.log = &std::cout;
  options.writes_files = world.rank() == 0;  // over MPI, rank 0 alone writes
  options.save_initial = args.save_initial;
  options.stop_at_step = args.stop_at_step;
  // mpirun hands its ranks a terminal even when its own output is a file: lines there.
  options.progress_bar = ::isatty(STDOUT_FILENO) && !world.parallel();
  options.stop_requested = &StopSignals::requested;
  TrainResult result;
  int signal = 0;
  {
    const StopSignals stop_signals;  // SIGINT, SIGTERM, SIGHUP: stop after the step, save
    result = run->train(options);
    signal = StopSignals::received();
  }
  if (signal) {  // the shell's convention for a process ended by a signal
    std::cout << std::flush;
    if (world.rank() != 0) return 128 + signal;  // rank 0 says it for all
    if (result.finished)
      std::cerr << "strata: " << StopSignals::name(signal) << ": training had finished (step "
                << result.steps << "); checkpoint in " << out
                << "/checkpoint; the sample prompts are skipped\n";
    else
      std::cerr << "strata: " << StopSignals::name(signal) << ": stopped after step "
                << result.steps << "; checkpoint saved in " << out
                << "/checkpoint\nresume with: strata train --resume " << shell_word(out) << "\n";
    return 128 + signal;
  }
  if (!result.finished) {
    std::cout << "stopped at step " << result.steps << " (--stop-at-step); checkpoint saved in "
              << out << "/checkpoint\nresume with: strata train --resume " << shell_word(out)
              << "\n";
    return 0;
  }
  std::cout << "trained " << result.steps << " steps in " << std::fixed << std::setprecision(2)
            << result.seconds << " s; checkpoint in " << out << "/checkpoint\n";
  if (world.rank() == 0) plot_after_training(out);
  if (LanguageModel* lm = run->language_model(); lm && world.rank() == 0)
    answer_sample_prompts(*lm);
  return 0;
}

struct GradcheckArgs {
  std::string config;
  std::size_t batch = 2, seq = 5, entries = 0;
  double tolerance = 1e-6;
  double step = 1e-6;
  std::int64_t seed = -1;
};

// The summary under gradcheck's table, and its exit status. Passing needs at least one
// tensor resolved to the tolerance: when every tensor passed only by its rounding floor
// or as a zero gradient (a step too small, e.g. 1e-12), nothing was checked at all.
int gradcheck_verdict(const LossGradCheckResult& result, const GradcheckArgs& args) {
  const ParameterGradCheck* worst = nullptr;
  std::size_t at_floor = 0, zero = 0, failed = 0, resolved = 0;
  for (const ParameterGradCheck& p : result.parameters) {
    failed += !p.passed(args.tolerance);
    zero += p.zero_gradient;
    at_floor += p.passed(args.tolerance) && !p.zero_gradient && p.error > args.tolerance;
    resolved += !p.zero_gradient && p.error <= args.tolerance;
    if (!p.zero_gradient && (!worst || p.error > worst->error)) worst = &p;
  }
  std::cout << "max relative error " << std::scientific << std::setprecision(3)
            << result.max_error() << (worst ? " (" + worst->name + ")" : std::string())
            << "; tolerance " << args.tolerance << "\n";
  if (at_floor)
    std::cout << at_floor
              << " tensor(s) with gradients too small to resolve to the tolerance in double "
                 "precision passed by their rounding floor\n";
  if (zero)
    std::cout << zero << " tensor(s) with a true zero gradient (both norms below rounding)\n";
  if (failed) {
    std::cout << "FAILED: " << failed
              << " parameter(s) above the tolerance and their rounding floor\n";
    return 1;
  }
  if (resolved == 0) {
    std::cout << "FAILED: the step " << args.step
              << " cannot resolve the gradients: no tensor's finite differences reach the "
                 "tolerance above rounding (try a larger --step)\n";
    return 1;
  }
  std::cout << "OK: every parameter's gradient matches finite differences\n";
  return 0;
}

// gradcheck of a classifier: random feature rows (standard normal) and random labels,
// loss = the mean softmax cross-entropy over the classes; --seq does not apply.
int gradcheck_classifier(const GradcheckArgs& args, const RunConfig& config) {
  const ClassificationTask task = parse_classification_task(config.task);
  const std::uint64_t seed = args.seed >= 0 ? std::uint64_t(args.seed) : config.seed;
  Rng rng(seed);
  Model<double> model =
      build_model<double>(config.model, 0, rng, {kAnyDim, std::int64_t(task.features)});
  Tensor<double> x = Tensor<double>::from_shape({args.batch, task.features});
  for (auto& v : x) v = rng.normal(0, 1);
  std::vector<std::int32_t> labels(args.batch);
  for (auto& y : labels) y = std::int32_t(rng.below(task.classes));
  LossGradCheckOptions options;
  options.max_entries = args.entries;
  options.step = args.step;
  options.seed = seed;
  Tensor<double> logits3, dlogits;
  // The loss takes (batch, seq, classes): the rows as sequences of one position.
  auto loss_of = [&](bool backward) {
    const Tensor<double>& logits = model.forward(x, options.mode);
    ensure_shape(logits3, std::vector<std::size_t>{args.batch, 1, task.classes});
    if (logits.size() != logits3.size())
      throw Error(config.file + ": the model's output " +
                  to_string(Shape(logits.shape().begin(), logits.shape().end())) +
                  " is not one score per class (batch, " + std::to_string(task.classes) + ")");
    std::copy(logits.begin(), logits.end(), logits3.begin());
    const double mean = softmax_cross_entropy(logits3, labels, dlogits).mean;
    if (backward) {
      dlogits.reshape({args.batch, task.classes});
      model.backward(dlogits);
    }
    return mean;
  };
  const LossGradCheckResult result = check_loss_gradients(
      model.parameters(), [&] { return loss_of(false); }, [&] { loss_of(true); }, options);
  std::cout << args.config << ": " << model.parameter_count() << " parameters in "
            << result.parameters.size() << " tensors, " << task.classes
            << " classes; double precision, batch " << args.batch
            << ", random feature rows and labels, loss " << result.loss << "\n"
            << result.report(args.tolerance);
  return gradcheck_verdict(result, args);
}

// Finite differences through the whole configured model, built in double precision:
// random ids and random targets, loss = the model's softmax cross-entropy.
int command_gradcheck(const GradcheckArgs& args) {
  RunConfig config = load_run_config(args.config);
  load_config_plugins(config);
  if (is_classification(config)) return gradcheck_classifier(args, config);
  // The vocabulary as `strata train` would build it, unless the model gives its own size.
  std::int64_t vocab_size = 0;
  if (!config.model.get("vocab_size").valid() && !config.phases.empty())
    vocab_size = std::int64_t(build_tokenizer(config)->size());
  const std::uint64_t seed = args.seed >= 0 ? std::uint64_t(args.seed) : config.seed;
  Rng rng(seed);
  Model<double> model = build_model<double>(config.model, vocab_size, rng);
  if (model.vocab_size <= 0)
    throw Error(args.config +
                ": gradcheck needs a vocabulary size: give training phases with "
                "data, or model.vocab_size");
  if (std::int64_t(args.seq) > model.max_seq_len)
    throw Error("--seq " + std::to_string(args.seq) + " is longer than the model's max_seq_len " +
                std::to_string(model.max_seq_len));
  Tensor<double> ids = Tensor<double>::from_shape({args.batch, args.seq});
  for (auto& id : ids) id = double(rng.below(std::uint64_t(model.vocab_size)));
  std::vector<std::int32_t> targets(args.batch * args.seq);
  for (auto& t : targets) t = std::int32_t(rng.below(std::uint64_t(model.vocab_size)));

  LossGradCheckOptions options;
  options.max_entries = args.entries;
  options.step = args.step;
  options.seed = seed;
  const LossGradCheckResult result = check_model_gradients(model, ids, targets, options);
  std::cout << args.config << ": " << model.parameter_count() << " parameters in "
            << result.parameters.size() << " tensors, vocabulary " << model.vocab_size
            << "; double precision, batch " << args.batch << ", seq " << args.seq
            << ", random ids and targets, loss " << result.loss << "\n"
            << result.report(args.tolerance);
  return gradcheck_verdict(result, args);
}

// The layer contract checks (framework/conformance.hpp) on one registered type.
int command_check_layer(const std::string& type, double tolerance) {
  const LayerInfo& info = layer_registry().find(type);
  const ConformanceResult result = check_layer_conformance(info, tolerance);
  std::cout << type << " (" << info.origin << "), example "
            << (info.example.empty() ? "{}" : info.example) << " on input "
            << to_string(info.example_input) << ":\n"
            << result.report();
  std::cout << (result.ok() ? "OK: " + type + " meets the layer contract\n"
                            : "FAILED: " + std::to_string(result.failed.size()) + " check(s)\n");
  return result.ok() ? 0 : 1;
}

// ---- The command line ---------------------------------------------------------------

// Every command is one entry of commands(): its name, its help line, a function that
// declares its options on its CLI11 subcommand (into its own Args, made per entry) and
// one that runs it. A new command is one entry there, plus its functions.
struct Command {
  std::string name, help;
  std::function<void(CLI::App*, std::vector<std::string>& plugins)> declare;
  std::function<int()> run;
};

template <class Args>
Command command(std::string name, std::string help,
                std::function<void(CLI::App*, Args&, std::vector<std::string>&)> declare,
                std::function<int(const Args&)> run) {
  auto args = std::make_shared<Args>();
  return {std::move(name), std::move(help),
          [args, declare](CLI::App* cmd, std::vector<std::string>& plugins) {
            declare(cmd, *args, plugins);
          },
          [args, run] { return run(*args); }};
}

void add_plugin_option(CLI::App* cmd, std::vector<std::string>& plugins) {
  cmd->add_option(
      "--plugin", plugins,
      "load this layer/optimizer library first (repeatable; relative to the working directory)");
}

void add_threads_option(CLI::App* cmd, int& threads) {
  cmd->add_option("--threads", threads, "threads (default: the config's `threads`)")
      ->check(accepts(run_config_key("threads")));
}

struct CheckArgs {
  std::string config;
  std::vector<std::string> data;
};

void declare_check(CLI::App* cmd, CheckArgs& c, std::vector<std::string>& plugins) {
  cmd->add_option("CONFIG", c.config, "YAML config")->required();
  cmd->add_option("--data", c.data, "replace a phase's data: PHASE=PATH");
  add_plugin_option(cmd, plugins);
}

struct NoArgs {};

void declare_tokenizer(CLI::App* cmd, TokenizerArgs& t, std::vector<std::string>& plugins) {
  cmd->add_option("CONFIG", t.config, "YAML config")->required();
  cmd->add_option("--out", t.out, "the tokenizer's file to write (e.g. fortunes.model)")
      ->required();
  cmd->add_option("--data", t.data, "replace a phase's data: PHASE=PATH");
  add_plugin_option(cmd, plugins);
}

void declare_layers(CLI::App* cmd, NoArgs&, std::vector<std::string>& plugins) {
  add_plugin_option(cmd, plugins);
}

void declare_train(CLI::App* cmd, TrainArgs& t, std::vector<std::string>& plugins) {
  cmd->add_option("CONFIG", t.config, "YAML config");
  cmd->add_option("--out", t.out, "run directory (default runs/<config name>)");
  cmd->add_option("--resume", t.resume,
                  "continue the run in this directory (with --out DST: in DST, from a copy of it)");
  cmd->add_option("--seed", t.seed, "override the config's seed")
      ->check(accepts(run_config_key("seed")));
  add_threads_option(cmd, t.threads);
  cmd->add_option("--data", t.data, "replace a phase's data: PHASE=PATH");
  cmd->add_option("--set", t.sets,
                  "override a config value: PATH=VALUE, e.g. training.phases.0.epochs=3 "
                  "(repeatable)");
  cmd->add_option("--init-from", t.init_from,
                  "start from the parameters of the run in DIR (new config, fresh optimizer)");
  cmd->add_option("--stop-at-step", t.stop_at_step,
                  "stop once the run has taken N optimizer steps, saving a checkpoint "
                  "(--resume continues)")
      ->check(CLI::Range(std::int64_t(1), std::int64_t(9000000000000000)));
  cmd->add_flag("--save-initial", t.save_initial,
                "also save the parameters before the first step in DIR/initial/");
  cmd->add_option("--trace-batches", t.trace_batches,
                  "append each corpus batch's window starts to FILE (docs/data.md)");
  add_plugin_option(cmd, plugins);
}

// generate's and chat's options: the run directory, and overrides of `generation:`.
void declare_sampling(CLI::App* cmd, GenerateArgs& g, std::vector<std::string>& plugins) {
  cmd->add_option("DIR", g.dir, "run directory with a checkpoint")->required();
  add_plugin_option(cmd, plugins);
  cmd->add_option("--max-tokens", g.max_tokens, "most new tokens")
      ->check(accepts(run_config_key("generation.max_tokens")));
  cmd->add_option("--temperature", g.temperature, "0 = greedy")
      ->check(accepts(run_config_key("generation.temperature")));
  cmd->add_option("--top-k", g.top_k, "sample among the k most likely; 0 = all")
      ->check(accepts(run_config_key("generation.top_k")));
  cmd->add_option("--top-p", g.top_p, "nucleus mass; 1 = off")
      ->check(accepts(run_config_key("generation.top_p")));
  // Below 1 it would reward repeating; at 10 a repeated token's positive logit is
  // already a tenth of itself.
  cmd->add_option("--repetition-penalty", g.repetition_penalty,
                  "divide the positive logits (multiply the negative) of tokens already in the "
                  "context by this; 1 = off")
      ->check(accepts(number_key("repetition-penalty", "1", "", 1, 10)));
  cmd->add_option("--seed", g.seed, "sampling seed")
      ->check(accepts(run_config_key("generation.seed")));
  add_threads_option(cmd, g.threads);
  cmd->add_flag("--no-cache", g.no_cache, "recompute the whole sequence for every token");
}

void declare_generate(CLI::App* cmd, GenerateArgs& g, std::vector<std::string>& plugins) {
  declare_sampling(cmd, g, plugins);
  cmd->add_option("--prompt", g.prompt,
                  "the text to continue, as given; to ask a model tuned on RustGPT's "
                  "instruction data, write \"User: <question>\" (what chat sends for a line)")
      ->required();
  cmd->footer(
      "The answer is printed as it is generated; </s> ends it and is not shown. generate "
      "continues --prompt exactly as given, while chat sends each line as \"User: <line>\": "
      "`generate --prompt \"User: Q\"` prints what chat's first answer to Q is.");
}

void declare_chat(CLI::App* cmd, GenerateArgs& g, std::vector<std::string>& plugins) {
  declare_sampling(cmd, g, plugins);
  cmd->footer(
      "Each line is sent as \"User: <line>\" (a line starting with \"User:\" as it is), the "
      "convention of RustGPT's instruction data (User: ... Assistant: ... </s>), after the "
      "conversation so far; the answer is printed as it is generated. The oldest turns are "
      "dropped when the conversation no longer fits the model's context with --max-tokens "
      "left for the answer (said once). `/reset` starts a new conversation; `exit` or the "
      "end of input quits.");
}

void declare_plot(CLI::App* cmd, PlotArgs& p, std::vector<std::string>& plugins) {
  cmd->add_option("DIR", p.dir, "run directory (steps.csv or metrics.csv, validation.csv)")
      ->required();
  cmd->add_option("--out", p.out, "the PNG to write (default DIR/loss.png)");
  cmd->add_option("--timeout", p.timeout_seconds, "seconds gnuplot may take")
      ->capture_default_str()
      ->check(accepts(number_key("timeout", "60", "", 0.1, 3600)));
  add_plugin_option(cmd, plugins);
}

struct EvaluateCli {
  EvaluateArgs args;
};

void declare_evaluate(CLI::App* cmd, EvaluateCli& cli, std::vector<std::string>& plugins) {
  EvaluateArgs& e = cli.args;
  cmd->add_option("DIR", e.dir, "run directory with a checkpoint")->required();
  cmd->add_option("--data,--dataset", e.dataset,
                  "text or JSON FILE to evaluate (default: the run's last phase's data)");
  add_threads_option(cmd, e.threads);
  cmd->add_flag("-v,--verbose", e.verbose, "print every answer");
  add_plugin_option(cmd, plugins);
}

void declare_gradcheck(CLI::App* cmd, GradcheckArgs& g, std::vector<std::string>& plugins) {
  cmd->add_option("CONFIG", g.config, "YAML config")->required();
  cmd->add_option("--batch", g.batch, "sequences of random ids")
      ->capture_default_str()
      ->check(accepts(integer_key("batch", "2", "", 1, 64)));
  cmd->add_option("--seq", g.seq, "positions per sequence")
      ->capture_default_str()
      ->check(accepts(integer_key("seq", "5", "", 1, 4096)));
  // Below 1e-15 a relative error is rounding noise, and 1 passes anything.
  cmd->add_option("--tolerance", g.tolerance, "largest relative error that passes")
      ->capture_default_str()
      ->check(accepts(number_key("tolerance", "1e-6", "", 1e-15, 1)));
  cmd->add_option("--entries", g.entries, "check this many random entries per parameter (0: all)")
      ->capture_default_str()
      ->check(accepts(integer_key("entries", "0", "", 0, 1e9)));
  // Smaller steps drown the differences in rounding, larger ones in truncation error.
  cmd->add_option("--step", g.step, "finite-difference step h")
      ->capture_default_str()
      ->check(accepts(number_key("step", "1e-6", "", 1e-12, 0.1)));
  cmd->add_option("--seed", g.seed, "seed for weights, ids and targets (default: the config's)")
      ->check(accepts(run_config_key("seed")));
  add_plugin_option(cmd, plugins);
}

struct CheckLayerArgs {
  std::string type;
  double tolerance = 1e-6;
};

void declare_check_layer(CLI::App* cmd, CheckLayerArgs& c, std::vector<std::string>& plugins) {
  cmd->add_option("TYPE", c.type, "registered layer type")->required();
  cmd->add_option("--tolerance", c.tolerance, "largest relative error that passes")
      ->capture_default_str()
      ->check(accepts(number_key("tolerance", "1e-6", "", 1e-15, 1)));
  add_plugin_option(cmd, plugins);
}

// The commands, in the order --help lists them.
std::vector<Command> commands() {
  return {
      command<CheckArgs>("check", "validate a config and print the model summary", declare_check,
                         [](const CheckArgs& c) { return command_check(c.config, c.data); }),
      command<NoArgs>("layers", "list layer and optimizer types and their config keys",
                      declare_layers, [](const NoArgs&) { return command_layers(); }),
      command<TrainArgs>("train", "train a model from a config", declare_train, command_train),
      command<GenerateArgs>("generate", "continue a prompt", declare_generate, command_generate),
      command<GenerateArgs>("chat", "answer questions typed on standard input", declare_chat,
                            command_chat),
      command<EvaluateCli>("evaluate",
                           "loss and perplexity on a dataset (and greedy answers to its "
                           "User:/Assistant: questions); a classifier's accuracy",
                           declare_evaluate,
                           [](const EvaluateCli& e) { return command_evaluate(e.args); }),
      command<PlotArgs>("plot", "a PNG of a run's training and validation loss against step",
                        declare_plot, command_plot),
      command<GradcheckArgs>(
          "gradcheck",
          "finite-difference check of a configured model's gradients (double precision)",
          declare_gradcheck, command_gradcheck),
      command<CheckLayerArgs>(
          "check-layer",
          "the layer contract checks (gradients, accumulation, shapes, buffers) on a type",
          declare_check_layer,
          [](const CheckLayerArgs& c) { return command_check_layer(c.type, c.tolerance); }),
      command<TokenizerArgs>("tokenizer",
                             "build a config's tokenizer from its data and write its file",
                             declare_tokenizer, command_tokenizer),
  };
}

// The CLI11 app with one subcommand per entry; `plugins` is shared (one run uses one
// command).
struct CommandLine {
  CLI::App app{"Strata: a small deep-learning framework (transformer language models)"};
  std::vector<std::string> plugins;
  std::vector<Command> table = commands();
  std::vector<CLI::App*> subcommands;  // table[i]'s

  CommandLine() {
    app.require_subcommand(1);
    app.set_version_flag("--version", "strata 0.1.0");
    for (Command& c : table) {
      subcommands.push_back(app.add_subcommand(c.name, c.help));
      c.declare(subcommands.back(), plugins);
    }
  }
};

std::vector<std::string> command_names(CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* cmd : app.get_subcommands([](CLI::App*) { return true; }))
    names.push_back(cmd->get_name());
  return names;
}

// `strata trian`: CLI11 alone says only that a subcommand is required.
std::optional<std::string> unknown_command(CLI::App& app, int argc, char** argv) {
  const std::vector<std::string> names = command_names(app);
  if (argc < 2) return "a command is required: " + join(names, ", ");
  const std::string word = argv[1];
  if (word.empty() || word[0] == '-' || std::find(names.begin(), names.end(), word) != names.end())
    return std::nullopt;
  const std::string suggestion = did_you_mean(word, names);
  return "unknown command \"" + word + "\"" +
         (suggestion.empty() ? "; commands: " + join(names, ", ") : suggestion);
}

// CLI11's message, or for a mistyped option the nearest one.
std::string usage_message(const CLI::ParseError& e, const CLI::App& app) {
  if (!dynamic_cast<const CLI::ExtrasError*>(&e)) return e.what();
  for (const CLI::App* cmd : app.get_subcommands()) {
    std::vector<std::string> names;
    for (const CLI::Option* option : cmd->get_options())
      for (const std::string& name : option->get_lnames()) names.push_back("--" + name);
    for (const std::string& arg : cmd->remaining()) {
      if (arg.rfind("--", 0) != 0) continue;
      const std::string name = arg.substr(0, arg.find('='));
      return cmd->get_name() + ": unknown option \"" + name + "\"" + did_you_mean(name, names);
    }
  }
  return e.what();
}

// Usage errors exit 2 (the shell convention), other errors 1.
int usage_error(const std::string& message) {
  std::cerr << "strata: error: " << message << "\nRun with --help for more information.\n";
  return 2;
}

int run(CommandLine& cl, int argc, char** argv) {
  if (const auto unknown = unknown_command(cl.app, argc, argv)) return usage_error(*unknown);
  try {
    cl.app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return cl.app.exit(e);
  } catch (const CLI::ParseError& e) {
    return usage_error(usage_message(e, cl.app));
  }
  try {
    load_cli_plugins(cl.plugins);
    for (std::size_t i = 0; i < cl.table.size(); ++i)
      if (*cl.subcommands[i]) return cl.table[i].run();
  } catch (const std::exception& e) {
    // One write per line: the ranks of an MPI job share one stderr.
    const int rank = Distributed::world().rank();
    std::cerr << "strata: error: " + (rank ? "rank " + std::to_string(rank) + ": " : "") +
                     e.what() + "\n";
    return 1;
  }
  return 0;
}

// Under mpirun: MPI starts here, and ranks other than 0 print nothing on standard
// output (their errors still go to stderr, naming the rank). Throws Error when started
// by mpirun without MPI built in.
void start_distributed() {
  if (Distributed::world().rank() == 0) return;
  const int null = ::open("/dev/null", O_WRONLY);
  if (null >= 0) ::dup2(null, STDOUT_FILENO), ::close(null);
}

// A closed standard stream's descriptor would go to the next file Strata opens (a config,
// a checkpoint, metrics.csv), and output meant for the terminal into it: /dev/null holds
// the place. Returns whether standard output was closed.
bool hold_closed_standard_streams() {
  bool stdout_closed = false;
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    stdout_closed |= fd == 1;
    ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);  // the lowest free descriptor: fd
  }
  return stdout_closed;
}

// What a command printed is its result: if standard output could not take it (a full
// disk, a closed pipe or descriptor), the run failed even when the command succeeded.
int check_stdout(int status, bool stdout_closed) {
  errno = 0;
  std::cout.flush();
  const bool flushed = std::fflush(stdout) == 0;
  if (flushed && std::cout && !std::ferror(stdout) && !stdout_closed) return status;
  int error = stdout_closed ? EBADF : errno;
  // The write that failed may have been long before (a full buffer mid-output) and its
  // errno overwritten since: one more byte asks the descriptor for the reason.
  if (!error && ::write(STDOUT_FILENO, "\n", 1) < 0) error = errno;
  std::cerr << "strata: error: cannot write to standard output"
            << (error ? std::string(": ") + std::strerror(error) : std::string()) << "\n";
  return status ? status : 1;
}

}  // namespace

// OpenBLAS (0.3.21) picks its kernels once, when it loads: from OPENBLAS_CORETYPE, else
// by CPU model, and on a model newer than it knows (Emerald Rapids, say) it falls back to
// its SSE3 "Prescott" kernels, at a third of the speed the CPU has. When the user chose no
// kernels and that fallback was taken on a CPU with AVX-512 or AVX2, Strata runs itself
// again with the kernels of that instruction set. (Results are bit-exact on one machine
// with one kernel choice; this choice is the same at every start on the same machine.)
void use_the_cpus_blas_kernels(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE")) return;
  if (blas_core() != "Prescott") return;
  const char* kernels = nullptr;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    kernels = "SkylakeX";
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    kernels = "Haswell";
  if (!kernels) return;
  ::setenv("OPENBLAS_CORETYPE", kernels, 1);
  ::execv("/proc/self/exe", argv);  // only returns on failure: keep the fallback kernels
}

int main(int argc, char** argv) {
  use_the_cpus_blas_kernels(argv);
  // A closed pipe then fails the write (EPIPE), reported at exit, instead of killing
  // Strata mid-run (a training would lose its steps since the last checkpoint).
  std::signal(SIGPIPE, SIG_IGN);
  const bool stdout_closed = hold_closed_standard_streams();
  try {
    start_distributed();
  } catch (const std::exception& e) {
    std::cerr << "strata: error: " << e.what() << "\n";
    return 1;
  }
  CommandLine cl;
  const int status = check_stdout(run(cl, argc, argv), stdout_closed);
  // A failed rank leaves without MPI_Finalize (which would wait for the others): mpirun
  // then ends the job.
  if (status == 0) Distributed::finalize();
  return status;
}
