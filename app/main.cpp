// The `strata` command line: check, layers, train, generate, chat, evaluate, gradcheck,
// check-layer.
// Every failure prints one clear message to stderr and exits non-zero. Every command
// takes `--plugin PATH` (repeatable): extra layer libraries, loaded before anything else
// (a config's own `plugins:` are loaded with the config, a checkpoint's when restored).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>

#include "framework/conformance.hpp"
#include "framework/grad_check.hpp"
#include "framework/parallel.hpp"
#include "framework/plugin.hpp"
#include "framework/registry.hpp"
#include "framework/text.hpp"
#include "models/dataset.hpp"
#include "models/generator.hpp"
#include "models/language_model.hpp"
#include "models/trainer.hpp"
#include "optimizers/optimizer.hpp"

namespace fs = std::filesystem;
using namespace strata;

namespace {

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

// Joins tokens for reading: no space before closing punctuation.
std::string readable(const Tokenizer& tokenizer, const std::vector<std::int32_t>& ids) {
  std::string out;
  for (std::int32_t id : ids) {
    const std::string token = tokenizer.token(id);
    const bool attach =
        token.size() == 1 && std::string(".,:;!?)'").find(token[0]) != std::string::npos;
    if (!out.empty() && !attach && out.back() != '(') out += ' ';
    out += token;
  }
  return out;
}

std::vector<std::int32_t> encode_prompt(const LanguageModel& lm, const std::string& prompt) {
  std::vector<std::string> unknown;
  std::vector<std::int32_t> ids = lm.encode(prompt, &unknown);
  if (ids.empty()) throw Error("the prompt is empty: give at least one word");
  if (unknown.size() == ids.size())
    throw Error("none of the prompt's words are in the model's vocabulary: " + join(unknown, ", "));
  if (!unknown.empty())
    std::cerr << "note: not in the vocabulary, read as <unk>: " << join(unknown, ", ") << "\n";
  return ids;
}

SamplingOptions sampling_from(const GenerationConfig& g) {
  SamplingOptions s;
  s.max_tokens = std::size_t(g.max_tokens);
  s.temperature = g.temperature;
  s.top_k = std::size_t(g.top_k);
  s.top_p = g.top_p;
  return s;
}

std::string answer(LanguageModel& lm, const std::string& prompt, const SamplingOptions& options,
                   Rng& rng) {
  const auto ids = encode_prompt(lm, prompt);
  auto out = generate(lm.model, ids, lm.tokenizer.eos_id(), options, rng);
  if (!out.empty() && out.back() == lm.tokenizer.eos_id()) out.pop_back();  // shown as the end
  return readable(lm.tokenizer, out);
}

int command_check(const std::string& config_path, const std::vector<std::string>& data) {
  RunConfig config = load_run_config(config_path, parse_data_overrides(data));
  load_config_plugins(config);
  // The vocabulary comes from the phases' data; without phases the model section must
  // give vocab_size itself.
  Rng rng(config.seed);
  std::int64_t vocab_size = 0;
  if (!config.phases.empty()) vocab_size = std::int64_t(build_vocabulary(config).size());
  const Model<float> model = build_model<float>(config.model, vocab_size, rng);
  auto optimizer = make_optimizer<float>(config.optimizer);
  std::cout << config_path << ": OK\n";
  if (vocab_size) std::cout << "vocabulary: " << vocab_size << " tokens (from the phases' data)\n";
  std::cout << model.summary();
  std::cout << "optimizer: " << optimizer->type() << "\n";
  for (const PhaseConfig& p : config.phases)
    std::cout << "phase " << p.name << ": " << p.data << ", " << p.epochs << " epochs, batch "
              << p.batch << ", lr " << p.schedule.lr << "\n";
  return 0;
}

int command_layers() {
  for (const LayerInfo* info : layer_registry().all()) {
    std::cout << info->type << "  -  " << info->summary;
    if (info->origin != "built-in") std::cout << "  [" << info->origin << "]";
    std::cout << "\n";
    for (const KeySpec& key : info->schema) {
      std::cout << "    " << std::left << std::setw(12) << key.name << std::setw(20)
                << std::string(to_string(key.type)).substr(0, 19) << std::setw(18)
                << (key.default_value
                        ? "= " + (key.default_value->empty() ? "\"\"" : *key.default_value)
                        : "(required)")
                << key.help << "\n";
    }
  }
  std::cout << "\nEvery layer also takes: name (string), repeat (integer).\n";
  return 0;
}

struct TrainArgs {
  std::string config;
  std::string out;
  std::string resume;
  std::int64_t seed = -1;
  int threads = 0;
  std::vector<std::string> data;
};

int command_train(const TrainArgs& args) {
  std::unique_ptr<LanguageModel> lm;
  std::unique_ptr<Checkpoint> resume;
  std::string out = args.out;
  if (!args.resume.empty()) {
    if (!args.config.empty() || args.seed >= 0 || !args.data.empty())
      throw Error(
          "--resume continues a run with its own config, seed and data: drop the CONFIG, "
          "--seed and --data arguments");
    resume = std::make_unique<Checkpoint>(load_checkpoint(args.resume));
    lm = std::make_unique<LanguageModel>(LanguageModel::restore(*resume, args.resume));
    out = args.resume;
    std::cout << "resuming " << args.resume << " at step " << resume->position.step << "\n";
  } else {
    if (args.config.empty()) throw Error("train needs a CONFIG file (or --resume DIR)");
    RunConfig config = load_run_config(args.config, parse_data_overrides(args.data));
    if (args.seed >= 0) config.seed = std::uint64_t(args.seed);
    if (config.phases.empty())
      throw Error(args.config + ": training.phases is empty: nothing to train");
    if (out.empty()) out = "runs/" + fs::path(args.config).stem().string();
    if (fs::exists(fs::path(out) / "checkpoint"))
      throw Error(out + " already holds a checkpoint: pass --resume " + out +
                  " to continue it, or another --out");
    lm = std::make_unique<LanguageModel>(LanguageModel::create(std::move(config)));
  }
  if (args.threads > 0) lm->config.threads = args.threads;
  auto optimizer = make_optimizer<float>(lm->config.optimizer);
  std::cout << "model: " << lm->model.parameter_count() << " parameters, vocabulary "
            << lm->tokenizer.size() << ", seed " << lm->config.seed << ", threads "
            << lm->config.threads << "\n";
  TrainOptions options;
  options.out_dir = out;
  options.log = &std::cout;
  options.progress_bar = ::isatty(STDOUT_FILENO);
  const TrainResult result = train(*lm, *optimizer, options, resume.get());
  std::cout << "trained " << result.steps << " steps in " << std::fixed << std::setprecision(2)
            << result.seconds << " s; checkpoint in " << out << "/checkpoint\n";
  Rng rng(lm->config.generation.seed);
  for (const std::string& prompt : lm->config.generation.prompts)
    std::cout << prompt << " -> " << answer(*lm, prompt, sampling_from(lm->config.generation), rng)
              << "\n";
  return 0;
}

struct GenerateArgs {
  std::string dir, prompt;
  std::int64_t max_tokens = -1, top_k = -1, seed = -1;
  double temperature = -1, top_p = -1;
  bool no_cache = false;
};

LanguageModel load_model(const std::string& dir) {
  return LanguageModel::restore(load_checkpoint(dir), dir);
}

SamplingOptions sampling_from(const LanguageModel& lm, const GenerateArgs& args, Rng& rng) {
  SamplingOptions s = sampling_from(lm.config.generation);
  if (args.max_tokens >= 0) s.max_tokens = std::size_t(args.max_tokens);
  if (args.temperature >= 0) s.temperature = args.temperature;
  if (args.top_k >= 0) s.top_k = std::size_t(args.top_k);
  if (args.top_p >= 0) s.top_p = args.top_p;
  s.use_cache = !args.no_cache;
  rng = Rng(args.seed >= 0 ? std::uint64_t(args.seed) : lm.config.generation.seed);
  return s;
}

int command_generate(const GenerateArgs& args) {
  LanguageModel lm = load_model(args.dir);
  const ThreadingScope threading(lm.config.threads);
  Rng rng;
  const SamplingOptions options = sampling_from(lm, args, rng);
  std::cout << answer(lm, args.prompt, options, rng) << "\n";
  return 0;
}

int command_chat(const GenerateArgs& args) {
  LanguageModel lm = load_model(args.dir);
  const ThreadingScope threading(lm.config.threads);
  Rng rng;
  const SamplingOptions options = sampling_from(lm, args, rng);
  const bool interactive = ::isatty(STDIN_FILENO);
  if (interactive) std::cout << "Strata chat. Type a question; `exit` quits.\n";
  std::string line;
  while (true) {
    if (interactive) std::cout << "> " << std::flush;
    if (!std::getline(std::cin, line)) break;
    if (line == "exit") break;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      std::cout << answer(lm, "User: " + line, options, rng) << "\n" << std::flush;
    } catch (const Error& e) {
      std::cout << "(" << e.what() << ")\n";
    }
  }
  return 0;
}

// Greedy answers to every `User: ... Assistant: ...` example of a dataset, compared
// token for token with the training answer.
int command_evaluate(const std::string& dir, const std::string& data_path, bool verbose) {
  LanguageModel lm = load_model(dir);
  const ThreadingScope threading(lm.config.threads);
  std::string path = data_path;
  if (path.empty()) {
    if (lm.config.phases.empty()) throw Error("no --data given and the run has no phases");
    path = lm.config.phases.back().data;
  }
  const auto texts = load_texts(path, DataFormat::kAuto);
  SamplingOptions options;
  options.max_tokens = std::size_t(lm.model.max_seq_len);
  std::size_t exact = 0, total = 0;
  Rng rng(0);
  for (const std::string& text : texts) {
    const auto split = text.find("Assistant:");
    if (split == std::string::npos) continue;
    const auto prompt = lm.encode(text.substr(0, split), nullptr);
    const auto expected = lm.encode(text.substr(split), nullptr);
    const auto got = generate(lm.model, prompt, lm.tokenizer.eos_id(), options, rng);
    ++total;
    const bool ok = got == expected;
    exact += ok;
    if (verbose || !ok)
      std::cout << (ok ? "ok    " : "WRONG ") << text.substr(0, split) << "-> "
                << readable(lm.tokenizer, got) << "\n";
  }
  std::cout << "exact answers: " << exact << "/" << total << "\n";
  return 0;
}

struct GradcheckArgs {
  std::string config;
  std::size_t batch = 2, seq = 5, entries = 0;
  double tolerance = 1e-6;
  double step = 1e-6;
  std::int64_t seed = -1;
};

// Finite differences through the whole configured model, built in double precision:
// random ids and random targets, loss = the model's softmax cross-entropy.
int command_gradcheck(const GradcheckArgs& args) {
  RunConfig config = load_run_config(args.config);
  load_config_plugins(config);
  // The vocabulary as `strata train` would build it, unless the model gives its own size.
  std::int64_t vocab_size = 0;
  if (!config.model.get("vocab_size").valid() && !config.phases.empty())
    vocab_size = std::int64_t(build_vocabulary(config).size());
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
  const ParameterGradCheck* worst = nullptr;
  std::size_t at_floor = 0, zero = 0, failed = 0;
  for (const ParameterGradCheck& p : result.parameters) {
    failed += !p.passed(args.tolerance);
    zero += p.zero_gradient;
    at_floor += p.passed(args.tolerance) && !p.zero_gradient && p.error > args.tolerance;
    if (!p.zero_gradient && (!worst || p.error > worst->error)) worst = &p;
  }
  const bool ok = failed == 0;
  std::cout << "max relative error " << std::scientific << std::setprecision(3)
            << result.max_error() << (worst ? " (" + worst->name + ")" : std::string())
            << "; tolerance " << args.tolerance << "\n";
  if (at_floor)
    std::cout << at_floor
              << " tensor(s) with gradients too small to resolve to the tolerance in double "
                 "precision passed by their rounding floor\n";
  if (zero)
    std::cout << zero << " tensor(s) with a true zero gradient (both norms below rounding)\n";
  if (ok)
    std::cout << "OK: every parameter's gradient matches finite differences\n";
  else
    std::cout << "FAILED: " << failed
              << " parameter(s) above the tolerance and their rounding "
                 "floor\n";
  return ok ? 0 : 1;
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Strata: a small deep-learning framework (transformer language models)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "strata 0.1.0");

  std::string config_path;
  std::vector<std::string> data, plugins;
  // Every command takes --plugin (one run uses one subcommand, so they share the vector).
  auto add_plugin_option = [&plugins](CLI::App* cmd) {
    cmd->add_option(
        "--plugin", plugins,
        "load this layer library first (repeatable; relative to the working directory)");
  };
  auto* check = app.add_subcommand("check", "validate a config and print the model summary");
  check->add_option("CONFIG", config_path, "YAML config")->required();
  check->add_option("--data", data, "replace a phase's data: PHASE=PATH");
  add_plugin_option(check);

  auto* layers = app.add_subcommand("layers", "list layer types and their config keys");
  add_plugin_option(layers);

  TrainArgs train_args;
  auto* train_cmd = app.add_subcommand("train", "train a model from a config");
  train_cmd->add_option("CONFIG", train_args.config, "YAML config");
  train_cmd->add_option("--out", train_args.out, "run directory (default runs/<config name>)");
  train_cmd->add_option("--resume", train_args.resume, "continue the run in this directory");
  train_cmd->add_option("--seed", train_args.seed, "override the config's seed")
      ->check(CLI::NonNegativeNumber);
  train_cmd->add_option("--threads", train_args.threads, "threads")->check(CLI::Range(1, 64));
  train_cmd->add_option("--data", train_args.data, "replace a phase's data: PHASE=PATH");
  add_plugin_option(train_cmd);

  GenerateArgs gen;
  auto add_sampling = [&gen, &add_plugin_option](CLI::App* cmd) {
    cmd->add_option("DIR", gen.dir, "run directory with a checkpoint")->required();
    add_plugin_option(cmd);
    cmd->add_option("--max-tokens", gen.max_tokens, "most new tokens")
        ->check(CLI::Range(1, 1 << 20));
    cmd->add_option("--temperature", gen.temperature, "0 = greedy")->check(CLI::Range(0.0, 100.0));
    cmd->add_option("--top-k", gen.top_k, "sample among the k most likely")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--top-p", gen.top_p, "nucleus mass")->check(CLI::Range(0.0, 1.0));
    cmd->add_option("--seed", gen.seed, "sampling seed")->check(CLI::NonNegativeNumber);
    cmd->add_flag("--no-cache", gen.no_cache, "recompute the whole sequence for every token");
  };
  auto* generate_cmd = app.add_subcommand("generate", "continue a prompt");
  add_sampling(generate_cmd);
  generate_cmd->add_option("--prompt", gen.prompt, "the text to continue")->required();
  auto* chat = app.add_subcommand("chat", "answer questions typed on standard input");
  add_sampling(chat);

  std::string eval_dir, eval_data;
  bool eval_verbose = false;
  auto* evaluate = app.add_subcommand("evaluate", "greedy answers to a chat dataset's questions");
  evaluate->add_option("DIR", eval_dir, "run directory with a checkpoint")->required();
  evaluate->add_option("--data", eval_data, "dataset (default: the run's last phase)");
  evaluate->add_flag("-v,--verbose", eval_verbose, "print every answer");
  add_plugin_option(evaluate);

  GradcheckArgs gc;
  auto* gradcheck = app.add_subcommand(
      "gradcheck", "finite-difference check of a configured model's gradients (double precision)");
  gradcheck->add_option("CONFIG", gc.config, "YAML config")->required();
  gradcheck->add_option("--batch", gc.batch, "sequences of random ids")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  gradcheck->add_option("--seq", gc.seq, "positions per sequence")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  gradcheck->add_option("--tolerance", gc.tolerance, "largest relative error that passes")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  gradcheck
      ->add_option("--entries", gc.entries, "check this many random entries per parameter (0: all)")
      ->capture_default_str();
  gradcheck->add_option("--step", gc.step, "finite-difference step h")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  gradcheck
      ->add_option("--seed", gc.seed, "seed for weights, ids and targets (default: the config's)")
      ->check(CLI::NonNegativeNumber);
  add_plugin_option(gradcheck);

  std::string check_type;
  double check_tolerance = 1e-6;
  auto* check_layer = app.add_subcommand(
      "check-layer",
      "the layer contract checks (gradients, accumulation, shapes, buffers) on a type");
  check_layer->add_option("TYPE", check_type, "registered layer type")->required();
  check_layer->add_option("--tolerance", check_tolerance, "largest relative error that passes")
      ->check(CLI::PositiveNumber);
  add_plugin_option(check_layer);

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // Usage errors exit 2 (the shell convention), other errors 1.
    std::cerr << "strata: error: " << e.what() << "\nRun with --help for more information.\n";
    return 2;
  }
  try {
    load_cli_plugins(plugins);
    if (*check) return command_check(config_path, data);
    if (*layers) return command_layers();
    if (*train_cmd) return command_train(train_args);
    if (*generate_cmd) return command_generate(gen);
    if (*chat) return command_chat(gen);
    if (*evaluate) return command_evaluate(eval_dir, eval_data, eval_verbose);
    if (*gradcheck) return command_gradcheck(gc);
    if (*check_layer) return command_check_layer(check_type, check_tolerance);
  } catch (const std::exception& e) {
    std::cerr << "strata: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
