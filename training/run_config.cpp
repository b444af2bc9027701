#include "training/run_config.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "framework/text.hpp"

namespace strata {

namespace {

const Schema& top_schema() {
  static const Schema schema = {
      integer_key("seed", "0", "the run's one random seed", 0, 9.0e15),
      integer_key("threads", "1", "threads for matrix products and parallel loops", 1, 64),
      strings_key("plugins", "[]", "shared libraries with extra layers, loaded before the model"),
      map_key("task", "{type: language_modeling}",
              "what is learnt: language_modeling (token ids, next-token loss) or classification "
              "(feature rows, class labels; tasks/classification.hpp)"),
      map_key("model", kRequired, "the layers (see `strata layers`)"),
      map_key("optimizer", kRequired, "{type: Adam, lr: ...}"),
      map_key("tokenizer", "{type: word}", "how text becomes token ids (text/tokenizer.hpp)"),
      map_key("training", "{}", "phases of training"),
      map_key("generation", "{}", "defaults for generate and chat"),
  };
  return schema;
}

const Schema& training_schema() {
  static const Schema schema = {
      sequence_key("phases", "[]", "training phases, run in order"),
      integer_key("checkpoint_every", "0",
                  "optimizer steps between checkpoints; 0 = at the end of each phase", 0, 1e12),
      integer_key("eval_every", "0",
                  "optimizer steps between validation evaluations (also at each epoch's end); "
                  "0 = at each epoch's end only",
                  0, 1e12),
      integer_key("patience", "0",
                  "evaluations without a better validation loss that end a phase; 0 = never", 0,
                  1e12),
  };
  return schema;
}

const Schema& phase_schema() {
  static const Schema schema = {
      string_key("name", kRequired, "phase name, e.g. pretrain"),
      string_key("format", "auto",
                 "json: an array of strings; text: one example per line; corpus: documents "
                 "cut into windows (docs/data.md); auto: json for *.json, else text",
                 {"auto", "json", "text", "corpus"}),
      string_key("document", "file", "format: corpus: what a document is",
                 {"file", "paragraph", "record"}),
      string_key("separator", "%", "format: corpus, document: record: the separator line"),
      string_key("include", "*", "format: corpus: file names taken from directories (a glob)"),
      integer_key("stride", "0", "format: corpus: tokens between window starts; 0 = max_seq_len", 0,
                  1e12),
      integer_key("epochs", kRequired, "passes over the data", 1, 1e7),
      integer_key("batch", "1", "sequences per optimizer step", 1, 65536),
      number_key("lr", "0", "learning rate; 0 = the optimizer's lr", 0),
      map_key("schedule", "{type: constant}", "learning-rate schedule"),
      boolean_key("shuffle", "false", "shuffle the sequences every epoch (with the run's seed)"),
      integer_key("accumulate", "1",
                  "batches whose gradients add up to one optimizer step (as one batch that "
                  "many times larger)",
                  1, 65536),
      string_key("validation", "", "validation dataset file (same format as data)"),
      number_key("validation_fraction", "0",
                 "fraction of the data's examples held out for validation (chosen by the seed)", 0,
                 0.9),
  };
  return schema;
}

// A classification run's data is the task's (task.data), not the phases'.
const Schema& classification_phase_schema() {
  static const Schema schema = [] {
    Schema s;
    for (const KeySpec& key : phase_schema())
      if (key.name != "data" && key.name != "format" && key.name != "validation" &&
          key.name != "validation_fraction" && key.name != "document" && key.name != "separator" &&
          key.name != "include" && key.name != "stride")
        s.push_back(key);
    return s;
  }();
  return schema;
}

// task.type; the other keys of a classification task are validated by the classifier.
std::string parse_task_type(const ConfigNode& task) {
  const Schema schema = {string_key("type", "language_modeling", "what is learnt",
                                    {"language_modeling", "classification"})};
  std::vector<std::string> others;
  // A language model's task has no other keys; an unknown type is reported as such.
  if (const ConfigNode type = task.get("type");
      type.is_scalar() && type.scalar() != "language_modeling")
    others = task.keys();
  const ConfigSection section(task, "task", schema, others);
  return section.string("type");
}

const Schema& generation_schema() {
  static const Schema schema = {
      integer_key("max_tokens", "80", "most tokens to generate", 1, 1 << 20),
      number_key("temperature", "0", "0 = greedy; otherwise softmax temperature", 0, 100),
      integer_key("top_k", "0", "sample among the k most likely tokens; 0 = all", 0, 1 << 24),
      number_key("top_p", "1", "nucleus sampling mass; 1 = off", 0, 1),
      integer_key("seed", "0", "sampling seed", 0, 9.0e15),
      strings_key("prompts", "[]", "prompts answered after `strata train`"),
      integer_key("every", "0",
                  "optimizer steps between greedy samples of the first prompt printed while "
                  "training; 0 = none",
                  0, 1e12),
  };
  return schema;
}

// A phase name is a value in metrics.csv and the NAME of `--data NAME=PATH`: a comma
// would add a column, an '=' would split the option elsewhere, a space or a quote
// would need quoting everywhere.
void check_phase_name(const ConfigSection& phase, const std::string& name) {
  const bool valid = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x80 && (std::isalnum(u) || c == '_' || c == '.' || c == '-');
  });
  if (!valid)
    phase.fail("name", "phase name \"" + name +
                           "\" may only use letters, digits, '_', '.' and '-' (it is written "
                           "to metrics.csv and given as --data NAME=PATH)");
}

// One entry of training.phases; `names`: the names of the phases before it (a name
// may not repeat), to which this one's is added.
// `data:` is a path, or (format: corpus) a list of them; the corpus keys need that format.
void parse_phase_data(const ConfigSection& phase, PhaseConfig& p) {
  const ConfigNode data = phase.node("data");
  if (!data.valid())
    phase.fail("data",
               "missing required key \"data\" (a data file, or for format: corpus a "
               "file, a directory or a list of them)");
  p.data_mark = phase.mark("data");
  p.format = phase.string("format");
  const bool corpus = p.format == "corpus";
  if (data.is_scalar()) {
    p.sources = {data.scalar()};
    p.data = data.scalar();
  } else if (data.is_sequence() && corpus && data.size() > 0) {
    for (std::size_t i = 0; i < data.size(); ++i) {
      if (!data[i].is_scalar())
        throw ConfigError(data[i].mark(), phase.context() + ".data[" + std::to_string(i) + "]",
                          "expected a path");
      p.sources.push_back(data[i].scalar());
    }
    p.data = std::string(1, '[').append(join(p.sources, ", ")).append("]");
  } else {
    phase.fail("data", corpus ? "expected a path or a non-empty list of paths"
                              : "expected a path (a list of paths needs format: corpus)");
  }
  for (const char* key : {"document", "separator", "include", "stride"})
    if (phase.has(key) && !corpus)
      phase.fail(key, std::string("\"") + key + "\" is for format: corpus (the format is " +
                          p.format + ")");
  p.document = phase.string("document");
  p.separator = phase.string("separator");
  p.include = phase.string("include");
  p.stride = phase.integer("stride");
}

PhaseConfig parse_phase(const ConfigNode& node, const std::string& where, bool lm,
                        double default_lr, std::vector<std::string>& names) {
  const ConfigSection phase(node, where, lm ? phase_schema() : classification_phase_schema(),
                            lm ? std::vector<std::string>{"data"} : std::vector<std::string>{});
  PhaseConfig p;
  p.name = phase.string("name");
  check_phase_name(phase, p.name);
  if (std::find(names.begin(), names.end(), p.name) != names.end())
    phase.fail("name", "phase name \"" + p.name + "\" is used twice");
  names.push_back(p.name);
  if (lm) {
    parse_phase_data(phase, p);
    p.validation = phase.string("validation");
    p.validation_mark = phase.mark("validation");
    p.validation_fraction = phase.number("validation_fraction");
    if (!p.validation.empty() && p.validation_fraction > 0)
      phase.fail("validation_fraction",
                 "give either validation (a file) or validation_fraction, not both");
  }
  p.accumulate = static_cast<std::size_t>(phase.integer("accumulate"));
  p.epochs = phase.integer("epochs");
  p.batch = static_cast<std::size_t>(phase.integer("batch"));
  p.shuffle = phase.boolean("shuffle");
  const double lr = phase.number("lr") > 0 ? phase.number("lr") : default_lr;
  p.schedule = parse_schedule(phase.node("schedule"), lr, where + ".schedule");
  return p;
}

// Points the phase each --data NAME=PATH names at PATH.
void apply_data_overrides(std::vector<PhaseConfig>& phases,
                          const std::map<std::string, std::string>& data_overrides,
                          const std::vector<std::string>& names, bool lm) {
  if (!lm && !data_overrides.empty())
    throw Error("--data " + data_overrides.begin()->first +
                "=...: a classification run's data is task.data, not a phase's");
  for (const auto& [name, path] : data_overrides) {
    // Not captured directly: clang 14 (the fuzz build) cannot capture a structured binding.
    const std::string& wanted = name;
    auto it = std::find_if(phases.begin(), phases.end(),
                           [&](const PhaseConfig& p) { return p.name == wanted; });
    if (it == phases.end())
      throw Error("--data " + name + "=" + path + ": no phase named \"" + name + "\"" +
                  did_you_mean(name, names) + "; phases: " + join(names, ", "));
    it->data = path;
    it->sources = {path};
    it->data_mark = SourceMark{"--data " + name, 0, 0};
  }
}

GenerationConfig parse_generation(const ConfigNode& node) {
  const ConfigSection gen(node, "generation", generation_schema());
  GenerationConfig generation;
  generation.max_tokens = gen.integer("max_tokens");
  generation.temperature = gen.number("temperature");
  generation.top_k = gen.integer("top_k");
  generation.top_p = gen.number("top_p");
  generation.seed = static_cast<std::uint64_t>(gen.integer("seed"));
  generation.prompts = gen.strings("prompts");
  generation.every = gen.integer("every");
  return generation;
}

}  // namespace

RunConfig parse_run_config(const std::string& text, const std::string& file,
                           const std::map<std::string, std::string>& data_overrides) {
  const ConfigNode root = ConfigNode::parse(text, file);
  if (!root.is_map())
    throw ConfigError(root.mark(), "", "expected a mapping with model, optimizer, training");
  const ConfigSection top(root, "config", top_schema());
  RunConfig config;
  config.file = file;
  config.text = text;
  config.data_overrides = data_overrides;
  config.seed = static_cast<std::uint64_t>(top.integer("seed"));
  config.threads = static_cast<int>(top.integer("threads"));
  config.plugins = top.strings("plugins");
  if (top.has("task")) {
    config.task = top.node("task");
    config.task_type = parse_task_type(config.task);
  }
  const bool lm = config.task_type == "language_modeling";
  config.model = top.node("model");
  config.optimizer = top.node("optimizer");
  if (top.has("tokenizer")) config.tokenizer = top.node("tokenizer");
  double default_lr = kDefaultLearningRate;
  if (const ConfigNode lr = config.optimizer.get("lr"); lr.is_scalar())
    default_lr = std::strtod(lr.scalar().c_str(), nullptr);

  if (top.has("training")) {
    const ConfigSection training(top.node("training"), "training", training_schema());
    config.checkpoint_every = training.integer("checkpoint_every");
    config.eval_every = training.integer("eval_every");
    config.patience = training.integer("patience");
    const ConfigNode phases = training.node("phases");
    std::vector<std::string> names;
    for (std::size_t i = 0; i < phases.size(); ++i) {
      const std::string where = "training.phases[" + std::to_string(i) + "]";
      config.phases.push_back(parse_phase(phases[i], where, lm, default_lr, names));
    }
    apply_data_overrides(config.phases, data_overrides, names, lm);
  }
  if (top.has("generation")) config.generation = parse_generation(top.node("generation"));
  return config;
}

RunConfig load_run_config(const std::string& path,
                          const std::map<std::string, std::string>& data_overrides) {
  return parse_run_config(read_config_file(path), path, data_overrides);
}

const KeySpec& run_config_key(std::string_view key) {
  const auto dot = key.find('.');
  const std::string_view section = dot == std::string_view::npos ? "" : key.substr(0, dot);
  const Schema& schema = section.empty()           ? top_schema()
                         : section == "generation" ? generation_schema()
                         : section == "training"   ? training_schema()
                                                   : throw std::logic_error("no config section");
  const std::string_view name = key.substr(dot == std::string_view::npos ? 0 : dot + 1);
  for (const KeySpec& spec : schema)
    if (spec.name == name) return spec;
  throw std::logic_error("no config key " + std::string(key));
}

}  // namespace strata
