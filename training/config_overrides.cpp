#include "training/config_overrides.hpp"

#include <algorithm>
#include <tuple>

#include "framework/config.hpp"

namespace strata {

namespace {

struct Override {
  std::string spec, path, value;
};

Override parse_override(const std::string& spec) {
  const std::size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error("--set " + spec + ": expected PATH=VALUE, e.g. training.phases.0.epochs=3");
  return {spec, spec.substr(0, eq), spec.substr(eq + 1)};
}

// The position of the override's node in the overridden text (its key when it has one).
SourceMark override_mark(const ConfigNode& root, const std::string& path) {
  ConfigNode node = root;
  SourceMark mark = root.mark();
  for (std::size_t start = 0;;) {
    const std::size_t dot = path.find('.', start);
    const std::string step = path.substr(start, dot - start);
    if (node.is_sequence()) {
      node = node[std::stoul(step)];
      mark = node.mark();
    } else {
      mark = node.key_mark(step);
      node = node.get(step);
    }
    if (dot == std::string::npos || !node.valid()) return mark;
    start = dot + 1;
  }
}

bool before_or_at(const SourceMark& a, const SourceMark& b) {
  return std::tie(a.line, a.column) <= std::tie(b.line, b.column);
}

}  // namespace

std::string overridden_file_name(const std::string& file) { return file + " (with --set)"; }

RunConfig load_run_config(const std::string& path,
                          const std::map<std::string, std::string>& data_overrides,
                          const std::vector<std::string>& sets) {
  std::string text = read_config_file(path);
  RunConfig config = parse_run_config(text, path, data_overrides);
  if (sets.empty()) return config;
  for (const std::string& spec : sets) {
    const Override o = parse_override(spec);
    try {
      ConfigNode::parse(o.value, "--set " + o.path);  // the value's own YAML, checked
      text = set_config_value(text, o.path, o.value);
    } catch (const ConfigError& e) {
      throw Error("--set " + spec + ": " + e.detail());
    } catch (const Error& e) {
      throw Error("--set " + spec + ": " + e.what());
    }
  }
  const std::string file = overridden_file_name(path);
  try {
    config = parse_run_config(text, file, data_overrides);
  } catch (const ConfigError& e) {
    RunConfig named;
    named.text = text;
    named.file = path;
    throw Error(name_override(e, named, sets));
  }
  config.file = path;
  return config;
}

std::string name_override(const ConfigError& error, const RunConfig& config,
                          const std::vector<std::string>& sets) {
  if (sets.empty() || error.mark().file != overridden_file_name(config.file)) return error.what();
  const ConfigNode root = ConfigNode::parse(config.text, error.mark().file);
  const Override* chosen = nullptr;
  std::vector<Override> overrides;
  for (const std::string& spec : sets) overrides.push_back(parse_override(spec));
  SourceMark best;
  for (const Override& o : overrides) {
    const SourceMark mark = override_mark(root, o.path);
    if (before_or_at(mark, error.mark()) && (!chosen || before_or_at(best, mark))) {
      chosen = &o;
      best = mark;
    }
  }
  if (!chosen) chosen = &overrides.front();
  return "--set " + chosen->spec + ": " + (error.context().empty() ? "" : error.context() + ": ") +
         error.detail();
}

}  // namespace strata
