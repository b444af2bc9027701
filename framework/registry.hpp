// Registries: create layers (and, with optimizers/optimizer_registry.hpp, optimizers)
// by type name.
//
// framework/ knows no layer: the built-ins (layers/builtin_layers.cpp) hand their
// registration function to set_builtin_layers() while the library loads, and
// layer_registry() calls it on first use (or at once, if the registry already exists),
// so they are there whichever static initialiser runs first. The library is built
// SHARED, so that file cannot be dropped the way a static link dropped Caffe's
// registrars; a static build would need it linked whole. User layers, in the tree or in
// a plugin, register with one line:
//
//   STRATA_REGISTER_LAYER("RMSNorm", RMSNorm);   // RMSNorm is a class template on T
//
// which needs RMSNorm<T>::schema(), RMSNorm<T>::kSummary and
// RMSNorm<T>::from_config(const LayerConfig<T>&), and optionally
// RMSNorm<T>::parameter_count(const LayerConfig<T>&) (see ParameterCounter) and
// RMSNorm<T>::config_output_shape(const LayerConfig<T>&) (see ShapeRule). Registering
// a name twice is an error; asking for an unknown name lists the known ones and
// suggests the nearest.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "framework/config.hpp"
#include "framework/layer.hpp"
#include "framework/layer_config.hpp"
#include "framework/text.hpp"

namespace strata {

struct UnknownName : Error {
  using Error::Error;
};

template <class T>
using LayerFactory = std::function<std::unique_ptr<Layer<T>>(const LayerConfig<T>&)>;

// How many parameter values a layer will allocate, computed from its config alone
// (nothing allocated), so build_model can refuse a model over its memory budget before
// allocating it. A layer opts in with
//   static std::uint64_t parameter_count(const LayerConfig<T>& config);
// build_model checks the figure against what the layer then allocates. A counter may
// return kUncounted when this config's count is unknown (a slot filled by a layer
// without a counter): the layer is then measured right after it is built.
template <class T>
using ParameterCounter = std::function<std::uint64_t(const LayerConfig<T>&)>;
inline constexpr std::uint64_t kUncounted = std::numeric_limits<std::uint64_t>::max();

// A layer's output shape from its config alone (its input shape is the config's), so
// build_model can count the layers after it, and refuse a model whose total is over the
// budget, before allocating any of them. A layer with a counter opts in with
//   static Shape config_output_shape(const LayerConfig<T>& config);
// which must agree with output_shape(config.input_shape()) of the layer it builds, and
// may throw a ShapeError for an input that does not fit (reported when it is built).
template <class T>
using ShapeRule = std::function<Shape(const LayerConfig<T>&)>;

struct LayerInfo {
  std::string type;
  std::string summary;
  Schema schema;
  // An example for the conformance checks (framework/conformance.hpp): a config's keys
  // as YAML flow ("{out: 3}", empty: the defaults) and an input shape (e.g. {2, 3, 4});
  // the layer's `static constexpr const char* kExample` and `static Shape example_input()`.
  std::string example;
  Shape example_input;
  bool example_ids = false;  // the input is token ids (`kExampleIds`), not differentiable
  LayerFactory<float> make_float;
  LayerFactory<double> make_double;
  std::string origin = "built-in";  // or the plugin library's path
  // Optional (empty: the layer is measured after it is built).
  ParameterCounter<float> count_float;
  ParameterCounter<double> count_double;
  ShapeRule<float> shape_float;  // optional too (empty: the count stops at this layer)
  ShapeRule<double> shape_double;

  template <class T>
  const LayerFactory<T>& factory() const {
    if constexpr (std::is_same_v<T, float>)
      return make_float;
    else
      return make_double;
  }
  template <class T>
  const ParameterCounter<T>& counter() const {
    if constexpr (std::is_same_v<T, float>)
      return count_float;
    else
      return count_double;
  }
  template <class T>
  const ShapeRule<T>& shape_rule() const {
    if constexpr (std::is_same_v<T, float>)
      return shape_float;
    else
      return shape_double;
  }
};

// A name -> Info table. `what` ("layer", "optimizer") words the errors.
template <class Info>
class Registry {
 public:
  explicit Registry(std::string what) : what_(std::move(what)) {}

  void add(Info info) {
    if (auto it = entries_.find(info.type); it != entries_.end())
      throw Error(what_ + " type \"" + info.type + "\" is already registered (" +
                  (it->second.origin == "built-in" ? std::string("a built-in type")
                                                   : "by " + it->second.origin) +
                  "): give yours another name");
    std::string key = info.type;
    entries_.emplace(std::move(key), std::move(info));
  }
  bool contains(const std::string& type) const { return entries_.count(type) != 0; }
  const Info& find(const std::string& type) const {
    if (auto it = entries_.find(type); it != entries_.end()) return it->second;
    throw UnknownName("unknown " + what_ + " type \"" + type + "\"" + did_you_mean(type, names()) +
                      "; known types: " + join(names(), ", "));
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [name, info] : entries_) out.push_back(name);
    return out;
  }
  std::vector<const Info*> all() const {
    std::vector<const Info*> out;
    for (const auto& [name, info] : entries_) out.push_back(&info);
    return out;
  }

 private:
  std::string what_;
  std::map<std::string, Info> entries_;
};

using LayerRegistry = Registry<LayerInfo>;

// The process-wide layer registry (a function-local static, built-ins registered on
// first use). The optimizer registry is optimizers/optimizer_registry.hpp.
LayerRegistry& layer_registry();

// Installs the function that adds the built-in layers (layers/ calls this once, at
// load): called on layer_registry()'s first use, or now if the registry exists.
using BuiltinLayers = void (*)(LayerRegistry&);
void set_builtin_layers(BuiltinLayers add);

// Registrations made while a library loads (static initialisers cannot throw): each
// success counts, each failure is kept for the plugin loader to report.
struct RegistrationLog {
  int registered = 0;
  std::vector<std::string> errors;
  std::string origin;  // set by the plugin loader while a library loads
};
RegistrationLog& registration_log();

// Adds `info` to `registry`, with the loading library (if any) as its origin; a failure
// (a clash) is recorded in the log, never thrown, since an exception escaping a static
// initialiser ends the process.
template <class Info>
bool add_at_load(Registry<Info>& registry, Info info) {
  RegistrationLog& log = registration_log();
  try {
    if (!log.origin.empty()) info.origin = log.origin;
    registry.add(std::move(info));
    ++log.registered;
    return true;
  } catch (const std::exception& e) {
    log.errors.push_back(e.what());
    return false;
  }
}
// add_at_load(layer_registry(), info).
bool register_layer_at_load(LayerInfo info);

// What the STRATA_REGISTER_* macros call: `add()` builds the Info and adds it, inside
// this guard, so that a schema() that throws is reported by the plugin loader as
// "<what> type "<type>": <reason>" instead of terminating the process.
template <class Add>
bool register_at_load(const char* what, const char* type, Add add) noexcept {
  try {
    return add();
  } catch (const std::exception& e) {
    registration_log().errors.push_back(std::string(what) + " type \"" + type + "\": " + e.what());
  } catch (...) {
    registration_log().errors.push_back(std::string(what) + " type \"" + type +
                                        "\": unknown exception while registering");
  }
  return false;
}

template <template <class> class L>
LayerInfo make_layer_info(std::string type) {
  LayerInfo info;
  info.type = std::move(type);
  info.summary = L<float>::kSummary;
  info.schema = L<float>::schema();
  info.make_float = [](const LayerConfig<float>& c) { return L<float>::from_config(c); };
  info.make_double = [](const LayerConfig<double>& c) { return L<double>::from_config(c); };
  if constexpr (requires { L<float>::kExample; }) info.example = L<float>::kExample;
  if constexpr (requires { L<float>::example_input(); })
    info.example_input = L<float>::example_input();
  if constexpr (requires { L<float>::kExampleIds; }) info.example_ids = L<float>::kExampleIds;
  if constexpr (requires(const LayerConfig<float>& c) { L<float>::parameter_count(c); }) {
    info.count_float = [](const LayerConfig<float>& c) { return L<float>::parameter_count(c); };
    info.count_double = [](const LayerConfig<double>& c) { return L<double>::parameter_count(c); };
  }
  if constexpr (requires(const LayerConfig<float>& c) { L<float>::config_output_shape(c); }) {
    info.shape_float = [](const LayerConfig<float>& c) { return L<float>::config_output_shape(c); };
    info.shape_double = [](const LayerConfig<double>& c) {
      return L<double>::config_output_shape(c);
    };
  }
  return info;
}

template <template <class> class L>
bool register_layer_at_load(const char* type) noexcept {
  return register_at_load("layer", type,
                          [&] { return register_layer_at_load(make_layer_info<L>(type)); });
}

// ---- Layers from config entries: the model's list, composites' lists, a block's slots ----

// One validated entry of a `layers:` list: {type: X, name: N, repeat: R, <X's keys>}.
struct LayerEntry {
  const LayerInfo* info = nullptr;
  std::string name;  // as given, or the type in snake_case; unique in its list
  std::int64_t repeat = 1;
  bool repeated = false;             // `repeat:` given: copies are named name.0 ... name.R-1
  std::optional<ConfigSection> own;  // the type's own keys
  SourceMark mark;                   // the entry's position
  std::string context;               // `where (Type "name")`, for errors
  std::string copy_name(std::int64_t r) const {
    return repeated ? name + "." + std::to_string(r) : name;
  }
};
// `where` names the entry in errors ("model.layers[2]"); `used` holds the names already
// taken in its list (a clash gets an index suffix unless the name was given).
LayerEntry parse_layer_entry(const ConfigNode& entry, const std::string& where, std::size_t index,
                             std::set<std::string>& used);

// Builds a layer through its registered factory; a ShapeError (input does not fit)
// becomes a ConfigError at the entry.
template <class T>
std::unique_ptr<Layer<T>> build_layer(const LayerEntry& entry, const LayerConfig<T>& config);

// The `key` list of a composite's config (Sequential, Residual), each layer fed the
// previous one's output shape, named under the composite ("block.ln1").
template <class T>
std::vector<std::unique_ptr<Layer<T>>> build_sublayers(const LayerConfig<T>& parent,
                                                       std::string_view key);

// The `key` list's parameter count from the configs alone, each layer fed the shape the
// one before it outputs (its ShapeRule), with the last one's output shape in `out`;
// kUncounted when a layer in it has no counter or no shape rule.
template <class T>
std::uint64_t sublayers_parameter_count(const LayerConfig<T>& parent, std::string_view key,
                                        Shape& out);

// A slot: one layer given as a mapping {type: X, <X's keys>} at `key` of the parent's
// config, named `name`, fed `in`. slot_parameter_count: its count from the config
// alone, or kUncounted when the type has no counter.
template <class T>
std::unique_ptr<Layer<T>> build_slot(const LayerConfig<T>& parent, std::string_view key,
                                     const std::string& name, const Shape& in);
template <class T>
std::uint64_t slot_parameter_count(const LayerConfig<T>& parent, std::string_view key,
                                   const std::string& name, const Shape& in);

}  // namespace strata

#define STRATA_CONCAT_INNER(a, b) a##b
#define STRATA_CONCAT(a, b) STRATA_CONCAT_INNER(a, b)
#define STRATA_REGISTER_LAYER(TYPE_NAME, CLASS_TEMPLATE)                                 \
  static const bool STRATA_CONCAT(strata_layer_registered_, __LINE__) [[maybe_unused]] = \
      ::strata::register_layer_at_load<CLASS_TEMPLATE>(TYPE_NAME)
