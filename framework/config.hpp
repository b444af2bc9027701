// Reading YAML configs with positions. yaml-cpp stays inside config.cpp: this header
// is what layers, optimizers and the CLI see.
//
// ConfigNode   a position-aware handle on one YAML node (file name kept for errors).
// Schema       the keys a section accepts: type, default, range, choices, help.
//              `strata layers` prints it; ConfigSection enforces it.
// ConfigSection  a validated mapping: on construction it rejects duplicate keys,
//              unknown keys (with did-you-mean), missing required keys, wrong types,
//              out-of-range values and invalid choices, each as a ConfigError at the
//              offending key's file:line:col.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "framework/errors.hpp"

namespace strata {

// The most a config file may hold: configs are kilobytes, and a file without an end
// (/dev/zero, an endless pipe) must stop somewhere.
inline constexpr std::size_t kMaxConfigBytes = std::size_t(16) << 20;

// The text of a config file, read once (a pipe works). Unreadable or a directory ->
// Error; past kMaxConfigBytes -> ConfigError at the byte where reading stopped.
std::string read_config_file(const std::string& path);

class ConfigNode {
 public:
  ConfigNode();  // a missing node
  // Parse YAML text; `file` names it in errors. Malformed YAML -> ConfigError, and so
  // is, at its line:column, a NUL byte, nesting deeper than 64 levels, an alias inside
  // the node it names (a cycle), aliases expanding past 100000 values (a bomb), or
  // text past kMaxConfigBytes: whatever the input, parsing ends quickly in bounded
  // memory.
  static ConfigNode parse(const std::string& text, const std::string& file);
  static ConfigNode load_file(const std::string& path);  // read_config_file + parse

  bool valid() const;  // false for a missing key
  bool is_map() const;
  bool is_sequence() const;
  bool is_scalar() const;
  bool is_null() const;
  std::size_t size() const;
  ConfigNode operator[](std::size_t index) const;  // sequence element
  ConfigNode get(std::string_view key) const;      // map value (invalid if absent)
  std::vector<std::string> keys() const;           // map keys in file order
  std::vector<std::pair<std::string, ConfigNode>> items() const;
  std::string scalar() const;                       // raw text of a scalar
  SourceMark mark() const;                          // 1-based position
  SourceMark key_mark(std::string_view key) const;  // position of the key itself
  const std::string& file() const;
  std::string to_yaml() const;  // re-emit (for checkpoints)

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
  explicit ConfigNode(std::shared_ptr<const Impl> impl);
};

// `text` (a config already parsed without error) re-emitted with the node at `path` set
// to the YAML `value`: keys and 0-based sequence indices separated by '.', e.g.
// "training.phases.0.epochs". The last key is added to its mapping when missing (the
// schema then judges it); every other step must exist. A path that leads nowhere ->
// Error naming the step (did-you-mean for a key). Comments are not kept.
std::string set_config_value(const std::string& text, const std::string& path,
                             const std::string& value);

enum class KeyType { integer, number, boolean, string, numbers, strings, map, sequence };
std::string_view to_string(KeyType type);

struct KeySpec {
  std::string name;
  KeyType type;
  std::optional<std::string> default_value;  // none: required
  std::string help;
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool above_min = false;            // min itself is refused (e.g. an epsilon: > 0)
  std::vector<std::string> choices;  // for strings: the valid values
};
using Schema = std::vector<KeySpec>;

// Schema builders: {"name", default (std::nullopt = required), help, range or choices}.
using Default = std::optional<std::string>;
inline constexpr std::nullopt_t kRequired = std::nullopt;
KeySpec integer_key(std::string name, Default def, std::string help, double min, double max);
KeySpec number_key(std::string name, Default def, std::string help,
                   double min = -std::numeric_limits<double>::infinity(),
                   double max = std::numeric_limits<double>::infinity());
// A number that must be > 0 (and <= max): epsilons, where 0 divides by zero.
KeySpec positive_number_key(std::string name, Default def, std::string help,
                            double max = std::numeric_limits<double>::infinity());
KeySpec boolean_key(std::string name, Default def, std::string help);
KeySpec string_key(std::string name, Default def, std::string help,
                   std::vector<std::string> choices = {});
KeySpec numbers_key(std::string name, Default def, std::string help,
                    double min = -std::numeric_limits<double>::infinity(),
                    double max = std::numeric_limits<double>::infinity());
KeySpec strings_key(std::string name, Default def, std::string help);
KeySpec map_key(std::string name, Default def, std::string help);
KeySpec sequence_key(std::string name, Default def, std::string help);

class ConfigSection {
 public:
  // `context` names the section in errors, e.g. `model.layers[2] (Linear "proj")`.
  // `extra_keys` are accepted without being in the schema (e.g. type, name, repeat).
  ConfigSection(ConfigNode node, std::string context, Schema schema,
                std::vector<std::string> extra_keys = {});

  bool has(std::string_view key) const;  // present in the file
  std::int64_t integer(std::string_view key) const;
  double number(std::string_view key) const;
  bool boolean(std::string_view key) const;
  std::string string(std::string_view key) const;
  std::vector<double> numbers(std::string_view key) const;
  std::vector<std::string> strings(std::string_view key) const;
  ConfigNode node(std::string_view key) const;  // raw (may be invalid if absent)

  const std::string& context() const { return context_; }
  const ConfigNode& self() const { return node_; }
  SourceMark mark(std::string_view key) const;  // the value's position, or the section's
  [[noreturn]] void fail(std::string_view key, const std::string& what) const;

 private:
  const KeySpec& spec(std::string_view key) const;
  void validate(const std::vector<std::string>& extra_keys) const;
  void check_value(const KeySpec& spec, const ConfigNode& value) const;

  ConfigNode node_;
  std::string context_;
  Schema schema_;
};

}  // namespace strata
