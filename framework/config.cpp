#include "framework/config.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "framework/text.hpp"

namespace strata {

std::string SourceMark::to_string() const {
  if (line == 0) return file;  // no position (e.g. `--data NAME` on the command line)
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

ConfigError::ConfigError(SourceMark mark, std::string context, std::string detail)
    : std::runtime_error(mark.to_string() + ": " + (context.empty() ? "" : context + ": ") +
                         detail),
      mark_(std::move(mark)),
      context_(std::move(context)),
      detail_(std::move(detail)) {}

struct ConfigNode::Impl {
  YAML::Node node;
  std::shared_ptr<const std::string> file;
  SourceMark parent_mark;  // for a missing key: where its parent is
};

namespace {

SourceMark to_source_mark(const YAML::Mark& mark, const std::string& file) {
  if (mark.is_null()) return {file, 0, 0};
  return {file, mark.line + 1, mark.column + 1};  // yaml-cpp marks are 0-based
}

// yaml-cpp accepts duplicate keys and returns the first: reject them here, for every
// mapping of the document, before anyone reads a value. check_structure() has bounded
// the depth and ruled out alias cycles, so this recursion ends.
void reject_duplicate_keys(const YAML::Node& node, const std::string& file) {
  if (node.IsMap()) {
    std::set<std::string> seen;
    for (const auto& item : node) {
      const std::string key = item.first.Scalar();
      if (!seen.insert(key).second)
        throw ConfigError(to_source_mark(item.first.Mark(), file), "",
                          "duplicate key \"" + key + "\"");
      reject_duplicate_keys(item.second, file);
    }
  } else if (node.IsSequence()) {
    for (const auto& item : node) reject_duplicate_keys(item, file);
  }
}

// The 1-based line:column of byte `offset` of `text`.
SourceMark mark_at(std::string_view text, std::size_t offset, const std::string& file) {
  SourceMark mark{file, 1, 1};
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n')
      ++mark.line, mark.column = 1;
    else
      ++mark.column;
  }
  return mark;
}

// A NUL byte cannot be in YAML text, and yaml-cpp reports it as something else (an
// escape character on the next line).
void reject_nul_bytes(std::string_view text, const std::string& file) {
  const std::size_t at = text.find('\0');
  if (at != std::string_view::npos)
    throw ConfigError(mark_at(text, at, file), "",
                      "NUL byte (\\0) in the config: YAML is text; is this a binary file?");
}

std::string limit_text(std::size_t bytes) {
  return std::to_string(bytes >> 20) + " MiB (" + std::to_string(bytes) + " bytes)";
}

// Walks the document's parse events before the tree is built, and refuses what would
// make walking the tree dangerous: nesting deeper than kMaxConfigDepth (recursion),
// an alias inside the node it names (a cycle: `a: &a [*a]`), and aliases that expand
// past kMaxAliasExpansion nodes (a "billion laughs" bomb). yaml-cpp builds aliases as
// shared nodes, so only the walk, never the parse, would pay for the expansion.
class StructureCheck : public YAML::EventHandler {
 public:
  explicit StructureCheck(const std::string& file) : file_(file) {}

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnAnchor(const YAML::Mark&, const std::string& name) override { pending_name_ = name; }
  void OnNull(const YAML::Mark&, YAML::anchor_t anchor) override { leaf(anchor); }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                const std::string&) override {
    leaf(anchor);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override;
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapEnd() override { close(); }

 private:
  struct Open {
    YAML::anchor_t anchor;
    std::uint64_t nodes;  // the container and everything in it, aliases expanded
  };
  void name_anchor(YAML::anchor_t anchor) {
    if (anchor != YAML::NullAnchor) names_[anchor] = pending_name_;
    pending_name_.clear();
  }
  void add(std::uint64_t nodes) {
    if (!open_.empty()) open_.back().nodes = std::min(open_.back().nodes + nodes, kSaturated);
  }
  void leaf(YAML::anchor_t anchor) {
    name_anchor(anchor);
    if (anchor != YAML::NullAnchor) sizes_[anchor] = 1;
    add(1);
  }
  void open(const YAML::Mark& mark, YAML::anchor_t anchor) {
    name_anchor(anchor);
    if (open_.size() >= kMaxConfigDepth)
      throw ConfigError(to_source_mark(mark, file_), "",
                        "nested deeper than " + std::to_string(kMaxConfigDepth) +
                            " levels: a Strata config needs a handful");
    open_.push_back({anchor, 1});
  }
  void close() {
    const Open done = open_.back();
    open_.pop_back();
    if (done.anchor != YAML::NullAnchor) sizes_[done.anchor] = done.nodes;
    add(done.nodes);
  }

  static constexpr std::size_t kMaxConfigDepth = 64;
  static constexpr std::uint64_t kMaxAliasExpansion = 100000;
  static constexpr std::uint64_t kSaturated = std::uint64_t(1) << 62;
  const std::string& file_;
  std::string pending_name_;
  std::vector<Open> open_;
  std::map<YAML::anchor_t, std::uint64_t> sizes_;  // closed anchored nodes
  std::map<YAML::anchor_t, std::string> names_;
  std::uint64_t expanded_ = 0;  // nodes added by aliases so far
};

void StructureCheck::OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) {
  const std::string name = "*" + names_[anchor];
  const auto size = sizes_.find(anchor);
  if (size == sizes_.end())  // still open: the alias is inside the node it repeats
    throw ConfigError(to_source_mark(mark, file_), "",
                      "alias " + name + " refers to a node that contains it (a cycle)");
  expanded_ = std::min(expanded_ + size->second, kSaturated);
  if (expanded_ > kMaxAliasExpansion)
    throw ConfigError(to_source_mark(mark, file_), "",
                      "aliases expand the config past " + std::to_string(kMaxAliasExpansion) +
                          " values (here " + name + " repeats " + std::to_string(size->second) +
                          "): write the values out instead");
  add(size->second);
}

// Bounds and structure, checked before yaml-cpp builds (and anyone walks) the tree.
void check_text(const std::string& text, const std::string& file) {
  if (text.size() > kMaxConfigBytes)
    throw ConfigError(mark_at(text, kMaxConfigBytes, file), "",
                      "config larger than " + limit_text(kMaxConfigBytes));
  reject_nul_bytes(text, file);
  std::istringstream in(text);
  YAML::Parser parser(in);
  StructureCheck check(file);
  parser.HandleNextDocument(check);  // YAML::Load reads the first document only, too
}

}  // namespace

ConfigNode::ConfigNode() = default;
ConfigNode::ConfigNode(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

ConfigNode ConfigNode::parse(const std::string& text, const std::string& file) {
  YAML::Node root;
  try {
    check_text(text, file);
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(to_source_mark(e.mark, file), "", "malformed YAML: " + e.msg);
  }
  reject_duplicate_keys(root, file);
  auto impl = std::make_shared<Impl>();
  impl->node = root;
  impl->file = std::make_shared<const std::string>(file);
  impl->parent_mark = {file, 1, 1};
  return ConfigNode(impl);
}

namespace {

// The child of `node` (a mapping or a sequence) at `step` of `path`; `create`: a missing
// key of a mapping is added (null).
YAML::Node config_child(YAML::Node node, const std::string& step, const std::string& where,
                        bool create) {
  if (node.IsSequence()) {
    const bool digits = !step.empty() && step.size() < 10 &&
                        step.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || std::stoul(step) >= node.size())
      throw Error(where + " is a list of " + std::to_string(node.size()) +
                  " entries: expected an index from 0 to " +
                  std::to_string(node.size() == 0 ? 0 : node.size() - 1) + ", got '" + step + "'");
    return node[std::stoul(step)];
  }
  if (!node.IsMap()) throw Error(where + " is a single value: it has no '" + step + "'");
  std::vector<std::string> keys;
  for (const auto& item : node) keys.push_back(item.first.as<std::string>());
  if (!create && std::find(keys.begin(), keys.end(), step) == keys.end())
    throw Error((where.empty() ? std::string("the config") : where) + " has no key \"" + step +
                "\"" + did_you_mean(step, keys));
  return node[step];
}

}  // namespace

std::string set_config_value(const std::string& text, const std::string& path,
                             const std::string& value) {
  std::vector<std::string> steps;
  for (std::size_t start = 0;;) {
    const std::size_t dot = path.find('.', start);
    steps.push_back(path.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  YAML::Node root = YAML::Load(text);
  YAML::Node node = root;
  std::string where;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].empty()) throw Error("'" + path + "' has an empty step");
    YAML::Node child = config_child(node, steps[i], where, i + 1 == steps.size());
    where += (where.empty() ? "" : ".") + steps[i];
    if (i + 1 == steps.size()) {
      child = YAML::Load(value);  // assigns into the tree
    } else {
      node.reset(child);  // walks on without assigning
    }
  }
  YAML::Emitter out;
  out << root;
  return std::string(out.c_str()) + "\n";
}

std::string read_config_file(const std::string& path) {
  if (std::filesystem::is_directory(path))
    throw Error(path + ": is a directory, not a config file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot read config file");
  // Read up to one byte past the limit: /dev/zero or an endless pipe stops there. In
  // chunks, so that memory follows the file's size (one buffer of the whole limit was
  // 16 MiB of touched pages for a config of a few hundred bytes: the peak RSS of every
  // command).
  std::string text;
  std::vector<char> chunk(std::size_t(1) << 16);
  while (text.size() <= kMaxConfigBytes) {
    const std::size_t want = std::min(chunk.size(), kMaxConfigBytes + 1 - text.size());
    in.read(chunk.data(), std::streamsize(want));
    text.append(chunk.data(), std::size_t(in.gcount()));
    if (std::size_t(in.gcount()) < want) break;  // end of file, or an error (below)
  }
  if (in.bad()) throw Error(path + ": cannot read config file (I/O error)");
  if (text.size() > kMaxConfigBytes)
    throw ConfigError(
        mark_at(text, kMaxConfigBytes, path), "",
        "config file larger than " + limit_text(kMaxConfigBytes) + ": stopped reading here");
  return text;
}

ConfigNode ConfigNode::load_file(const std::string& path) {
  return parse(read_config_file(path), path);
}

bool ConfigNode::valid() const { return impl_ && impl_->node.IsDefined(); }
bool ConfigNode::is_map() const { return valid() && impl_->node.IsMap(); }
bool ConfigNode::is_sequence() const { return valid() && impl_->node.IsSequence(); }
bool ConfigNode::is_scalar() const { return valid() && impl_->node.IsScalar(); }
bool ConfigNode::is_null() const { return valid() && impl_->node.IsNull(); }
std::size_t ConfigNode::size() const { return valid() ? impl_->node.size() : 0; }

ConfigNode ConfigNode::operator[](std::size_t index) const {
  auto impl = std::make_shared<Impl>(*impl_);
  // reset(), not operator=: on a YAML::Node, `=` assigns THROUGH the handle and would
  // overwrite the parent node that the copied handle still refers to.
  impl->node.reset(impl_->node[index]);
  impl->parent_mark = mark();
  return ConfigNode(impl);
}

ConfigNode ConfigNode::get(std::string_view key) const {
  if (!is_map()) return ConfigNode();
  auto impl = std::make_shared<Impl>(*impl_);
  impl->node.reset(YAML::Node(YAML::NodeType::Undefined));  // reset: see operator[]
  for (const auto& item : impl_->node)
    if (item.first.Scalar() == key) impl->node.reset(item.second);
  impl->parent_mark = mark();
  return ConfigNode(impl);
}

std::vector<std::string> ConfigNode::keys() const {
  std::vector<std::string> out;
  if (is_map())
    for (const auto& item : impl_->node) out.push_back(item.first.Scalar());
  return out;
}

std::vector<std::pair<std::string, ConfigNode>> ConfigNode::items() const {
  std::vector<std::pair<std::string, ConfigNode>> out;
  for (const auto& key : keys()) out.emplace_back(key, get(key));
  return out;
}

std::string ConfigNode::scalar() const { return is_scalar() ? impl_->node.Scalar() : ""; }

SourceMark ConfigNode::mark() const {
  if (!impl_) return {};
  if (!impl_->node.IsDefined()) return impl_->parent_mark;
  SourceMark m = to_source_mark(impl_->node.Mark(), *impl_->file);
  return m.line == 0 ? impl_->parent_mark : m;
}

SourceMark ConfigNode::key_mark(std::string_view key) const {
  if (is_map())
    for (const auto& item : impl_->node)
      if (item.first.Scalar() == key) return to_source_mark(item.first.Mark(), *impl_->file);
  return mark();
}

const std::string& ConfigNode::file() const {
  static const std::string none = "<config>";
  return impl_ ? *impl_->file : none;
}

std::string ConfigNode::to_yaml() const {
  if (!valid()) return "";
  YAML::Emitter out;
  out << impl_->node;
  return out.c_str();
}

std::string_view to_string(KeyType type) {
  switch (type) {
    case KeyType::integer:
      return "an integer";
    case KeyType::number:
      return "a number";
    case KeyType::boolean:
      return "true or false";
    case KeyType::string:
      return "a string";
    case KeyType::numbers:
      return "a list of numbers";
    case KeyType::strings:
      return "a list of strings";
    case KeyType::map:
      return "a mapping";
    case KeyType::sequence:
      return "a list";
  }
  return "?";
}

namespace {
KeySpec make_key(std::string name, KeyType type, Default def, std::string help,
                 double min = -INFINITY, double max = INFINITY,
                 std::vector<std::string> choices = {}) {
  KeySpec s;
  s.name = std::move(name);
  s.type = type;
  s.default_value = std::move(def);
  s.help = std::move(help);
  s.min = min;
  s.max = max;
  s.choices = std::move(choices);
  return s;
}
}  // namespace

KeySpec integer_key(std::string name, Default def, std::string help, double min, double max) {
  return make_key(std::move(name), KeyType::integer, std::move(def), std::move(help), min, max);
}
KeySpec number_key(std::string name, Default def, std::string help, double min, double max) {
  return make_key(std::move(name), KeyType::number, std::move(def), std::move(help), min, max);
}
KeySpec positive_number_key(std::string name, Default def, std::string help, double max) {
  KeySpec s = number_key(std::move(name), std::move(def), std::move(help), 0, max);
  s.above_min = true;
  return s;
}
KeySpec boolean_key(std::string name, Default def, std::string help) {
  return make_key(std::move(name), KeyType::boolean, std::move(def), std::move(help));
}
KeySpec string_key(std::string name, Default def, std::string help,
                   std::vector<std::string> choices) {
  return make_key(std::move(name), KeyType::string, std::move(def), std::move(help), -INFINITY,
                  INFINITY, std::move(choices));
}
KeySpec numbers_key(std::string name, Default def, std::string help, double min, double max) {
  return make_key(std::move(name), KeyType::numbers, std::move(def), std::move(help), min, max);
}
KeySpec strings_key(std::string name, Default def, std::string help) {
  return make_key(std::move(name), KeyType::strings, std::move(def), std::move(help));
}
KeySpec map_key(std::string name, Default def, std::string help) {
  return make_key(std::move(name), KeyType::map, std::move(def), std::move(help));
}
KeySpec sequence_key(std::string name, Default def, std::string help) {
  return make_key(std::move(name), KeyType::sequence, std::move(def), std::move(help));
}

namespace {

// Strict scalar parsing: YAML 1.1 coercions ("yes", "0x10", "1e3" as an integer) are
// not what a user means in a model config.
std::optional<std::int64_t> parse_integer(const std::string& text) {
  if (text.empty()) return std::nullopt;
  std::size_t i = (text[0] == '-' || text[0] == '+') ? 1 : 0;
  if (i == text.size()) return std::nullopt;
  for (std::size_t j = i; j < text.size(); ++j)
    if (!std::isdigit(static_cast<unsigned char>(text[j]))) return std::nullopt;
  try {
    return std::stoll(text);
  } catch (...) {
    return std::nullopt;
  }
}

std::optional<double> parse_number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(value)) return std::nullopt;
  if (text.find_first_of("xXpP") != std::string::npos) return std::nullopt;  // no hex floats
  return value;
}

std::optional<bool> parse_boolean(const std::string& text) {
  if (text == "true") return true;
  if (text == "false") return false;
  return std::nullopt;
}

std::string quote(std::string_view s) {
  // Appended piece by piece: "\"" + std::string(s) + "\"" trips GCC 12's -Warray-bounds
  // false positive inside std::string (GCC PR 105651).
  std::string out;
  out.reserve(s.size() + 2);
  out.append(1, '"').append(s).append(1, '"');
  return out;
}

std::string format_number(double v) { return plain_number(v); }

}  // namespace

ConfigSection::ConfigSection(ConfigNode node, std::string context, Schema schema,
                             std::vector<std::string> extra_keys)
    : node_(std::move(node)), context_(std::move(context)), schema_(std::move(schema)) {
  validate(extra_keys);
}

void ConfigSection::validate(const std::vector<std::string>& extra_keys) const {
  if (!node_.is_map())
    throw ConfigError(node_.mark(), context_, "expected a mapping of keys to values");
  std::vector<std::string> known = extra_keys;
  for (const auto& s : schema_) known.push_back(s.name);
  for (const auto& key : node_.keys()) {
    if (std::find(known.begin(), known.end(), key) == known.end())
      throw ConfigError(node_.key_mark(key), context_,
                        "unknown key " + quote(key) + did_you_mean(key, known) +
                            "; valid keys: " + join(known, ", "));
  }
  for (const auto& s : schema_) {
    const ConfigNode value = node_.get(s.name);
    if (!value.valid()) {
      if (!s.default_value)
        throw ConfigError(node_.mark(), context_,
                          "missing required key " + quote(s.name) + " (" +
                              std::string(to_string(s.type)) +
                              (s.help.empty() ? "" : ": " + s.help) + ")");
      continue;
    }
    check_value(s, value);
  }
}

namespace {

// Throws unless `v` lies in the key's range; `at`: the value itself, or for a list the
// element (so errors point at it).
void check_range(const KeySpec& s, double v, const ConfigNode& at, const std::string& context) {
  if (v < s.min || v > s.max || (s.above_min && v == s.min)) {
    const std::string low = s.above_min ? "> " : ">= ";
    std::string range = std::isinf(s.max) ? low + format_number(s.min)
                        : std::isinf(s.min)
                            ? "<= " + format_number(s.max)
                            : (s.above_min ? "in (" : "in [") + format_number(s.min) + ", " +
                                  format_number(s.max) + "]";
    throw ConfigError(at.mark(), context,
                      quote(s.name) + " must be " + range + ", got " + at.scalar());
  }
}

// What a value of the wrong type is, for "..., got <this>".
std::string describe_value(const ConfigNode& value) {
  return value.is_scalar()     ? quote(value.scalar())
         : value.is_map()      ? "a mapping"
         : value.is_sequence() ? "a list"
                               : "nothing";
}

}  // namespace

void ConfigSection::check_value(const KeySpec& s, const ConfigNode& value) const {
  const std::string expected = quote(s.name) + " must be " + std::string(to_string(s.type));
  auto check_range = [&](double v, const ConfigNode& at) {
    strata::check_range(s, v, at, context_);
  };
  auto fail_type = [&](const std::string& got) {
    throw ConfigError(value.mark(), context_, expected + ", got " + got);
  };
  const std::string got = describe_value(value);
  switch (s.type) {
    case KeyType::integer: {
      auto v = value.is_scalar() ? parse_integer(value.scalar()) : std::nullopt;
      if (!v) fail_type(got);
      check_range(static_cast<double>(*v), value);
      break;
    }
    case KeyType::number: {
      auto v = value.is_scalar() ? parse_number(value.scalar()) : std::nullopt;
      if (!v) fail_type(got);
      check_range(*v, value);
      break;
    }
    case KeyType::boolean:
      if (!value.is_scalar() || !parse_boolean(value.scalar())) fail_type(got);
      break;
    case KeyType::string:
      if (!value.is_scalar()) fail_type(got);
      if (!s.choices.empty() &&
          std::find(s.choices.begin(), s.choices.end(), value.scalar()) == s.choices.end())
        throw ConfigError(value.mark(), context_,
                          quote(s.name) + " must be one of " + join(s.choices, ", ") + ", got " +
                              quote(value.scalar()) + did_you_mean(value.scalar(), s.choices));
      break;
    case KeyType::numbers:
      if (!value.is_sequence()) fail_type(got);
      for (std::size_t i = 0; i < value.size(); ++i) {
        auto v = value[i].is_scalar() ? parse_number(value[i].scalar()) : std::nullopt;
        if (!v)
          throw ConfigError(value[i].mark(), context_,
                            expected + ", element " + std::to_string(i) + " is not a number");
        check_range(*v, value[i]);
      }
      break;
    case KeyType::strings:
      if (!value.is_sequence()) fail_type(got);
      for (std::size_t i = 0; i < value.size(); ++i)
        if (!value[i].is_scalar())
          throw ConfigError(value[i].mark(), context_,
                            expected + ", element " + std::to_string(i) + " is not a string");
      break;
    case KeyType::map:
      if (!value.is_map()) fail_type(got);
      break;
    case KeyType::sequence:
      if (!value.is_sequence()) fail_type(got);
      break;
  }
}

const KeySpec& ConfigSection::spec(std::string_view key) const {
  for (const auto& s : schema_)
    if (s.name == key) return s;
  throw std::logic_error(context_ + ": key \"" + std::string(key) + "\" is not in its schema");
}

bool ConfigSection::has(std::string_view key) const { return node_.get(key).valid(); }

ConfigNode ConfigSection::node(std::string_view key) const { return node_.get(key); }

SourceMark ConfigSection::mark(std::string_view key) const {
  const ConfigNode value = node_.get(key);
  return value.valid() ? value.mark() : node_.mark();
}

void ConfigSection::fail(std::string_view key, const std::string& what) const {
  throw ConfigError(mark(key), context_, what);
}

namespace {
std::string text_of(const ConfigSection& section, const KeySpec& s, std::string_view key) {
  const ConfigNode value = section.node(key);
  if (value.valid()) return value.scalar();
  return *s.default_value;
}
}  // namespace

std::int64_t ConfigSection::integer(std::string_view key) const {
  return *parse_integer(text_of(*this, spec(key), key));
}

double ConfigSection::number(std::string_view key) const {
  return *parse_number(text_of(*this, spec(key), key));
}

bool ConfigSection::boolean(std::string_view key) const {
  return *parse_boolean(text_of(*this, spec(key), key));
}

std::string ConfigSection::string(std::string_view key) const {
  return text_of(*this, spec(key), key);
}

std::vector<double> ConfigSection::numbers(std::string_view key) const {
  const KeySpec& s = spec(key);
  std::vector<double> out;
  const ConfigNode value = node(key);
  if (!value.valid()) {
    // Defaults of list keys are written as YAML flow lists, e.g. "[0.9, 0.999]".
    const ConfigNode parsed = ConfigNode::parse(*s.default_value, "<default>");
    for (std::size_t i = 0; i < parsed.size(); ++i)
      out.push_back(*parse_number(parsed[i].scalar()));
    return out;
  }
  for (std::size_t i = 0; i < value.size(); ++i) out.push_back(*parse_number(value[i].scalar()));
  return out;
}

std::vector<std::string> ConfigSection::strings(std::string_view key) const {
  const KeySpec& s = spec(key);
  const ConfigNode value = node(key);
  const ConfigNode list = value.valid() ? value : ConfigNode::parse(*s.default_value, "<default>");
  std::vector<std::string> out;
  for (std::size_t i = 0; i < list.size(); ++i) out.push_back(list[i].scalar());
  return out;
}

}  // namespace strata
