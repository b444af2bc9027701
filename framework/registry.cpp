#include "framework/registry.hpp"

namespace strata {

namespace {

// Plain pointers, constant-initialised: valid before any dynamic initialiser runs.
BuiltinLayers builtin_layers = nullptr;
LayerRegistry* created = nullptr;

}  // namespace

LayerRegistry& layer_registry() {
  static LayerRegistry* registry = [] {
    auto* r = new LayerRegistry("layer");  // never destroyed: plugins may outlive statics
    if (builtin_layers) builtin_layers(*r);
    created = r;
    return r;
  }();
  return *registry;
}

void set_builtin_layers(BuiltinLayers add) {
  builtin_layers = add;
  if (created) add(*created);
}

RegistrationLog& registration_log() {
  static RegistrationLog log;
  return log;
}

bool register_layer_at_load(LayerInfo info) {
  return add_at_load(layer_registry(), std::move(info));
}

}  // namespace strata

namespace strata {

namespace {

std::string snake_case(const std::string& type) {
  std::string out;
  for (std::size_t i = 0; i < type.size(); ++i) {
    const char c = type[i];
    if (std::isupper(static_cast<unsigned char>(c))) {
      if (i && !std::isupper(static_cast<unsigned char>(type[i - 1]))) out += '_';
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      out += c;
    }
  }
  return out;
}

const LayerInfo& find_layer_type(const ConfigNode& entry, const std::string& where) {
  if (!entry.is_map()) throw ConfigError(entry.mark(), where, "expected a mapping with a \"type\"");
  const ConfigNode type_node = entry.get("type");
  if (!type_node.is_scalar())
    throw ConfigError(entry.mark(), where, "missing required key \"type\" (a layer type name)");
  try {
    return layer_registry().find(type_node.scalar());
  } catch (const UnknownName& e) {
    throw ConfigError(type_node.mark(), where, e.what());
  }
}

}  // namespace

LayerEntry parse_layer_entry(const ConfigNode& entry, const std::string& where, std::size_t index,
                             std::set<std::string>& used) {
  LayerEntry out;
  out.info = &find_layer_type(entry, where);
  const std::string& type = out.info->type;
  const Schema generic = {string_key("name", "", "layer name (default: the type in snake_case)"),
                          integer_key("repeat", "1", "expand into this many copies", 1, 1000)};
  std::vector<std::string> keys{"type"};
  for (const auto& s : out.info->schema) keys.push_back(s.name);
  const ConfigSection common(entry, where + " (" + type + ")", generic, keys);
  out.name = common.string("name");
  if (out.name.empty()) out.name = snake_case(type);
  if (!used.insert(out.name).second) {
    if (common.has("name")) common.fail("name", "layer name \"" + out.name + "\" is already used");
    out.name += '_';  // two appends: GCC 12 -Warray-bounds false positive on "_" + ...
    out.name += std::to_string(index);
    used.insert(out.name);
  }
  out.context = where + " (" + type + " \"" + out.name + "\")";
  out.own.emplace(entry, out.context, out.info->schema,
                  std::vector<std::string>{"type", "name", "repeat"});
  out.repeat = common.integer("repeat");
  out.repeated = common.has("repeat");
  out.mark = entry.mark();
  return out;
}

template <class T>
std::unique_ptr<Layer<T>> build_layer(const LayerEntry& entry, const LayerConfig<T>& config) {
  try {
    std::unique_ptr<Layer<T>> layer = entry.info->template factory<T>()(config);
    layer->output_shape(config.input_shape());  // refuse an input that does not fit, here
    return layer;
  } catch (const ShapeError& e) {
    throw ConfigError(entry.mark, entry.context, std::string("shapes do not chain: ") + e.what());
  }
}

template <class T>
std::vector<std::unique_ptr<Layer<T>>> build_sublayers(const LayerConfig<T>& parent,
                                                       std::string_view key) {
  const ConfigNode entries = parent.node(key);
  if (!entries.is_sequence() || entries.size() == 0) parent.fail(key, "needs at least one layer");
  std::vector<std::unique_ptr<Layer<T>>> out;
  std::set<std::string> used;
  Shape in = parent.input_shape();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const LayerEntry entry = parse_layer_entry(
        entries[i], parent.context() + "." + std::string(key) + "[" + std::to_string(i) + "]", i,
        used);
    for (std::int64_t r = 0; r < entry.repeat; ++r) {
      const LayerConfig<T> config(
          *entry.own, join_name(parent.name(), entry.copy_name(r)), in, parent.model(),
          parent.rng(), [&parent](const std::string& n) { return parent.find_parameter(n); });
      out.push_back(build_layer(entry, config));
      in = out.back()->output_shape(in);
    }
  }
  return out;
}

template <class T>
std::uint64_t sublayers_parameter_count(const LayerConfig<T>& parent, std::string_view key,
                                        Shape& out) {
  const ConfigNode entries = parent.node(key);
  if (!entries.is_sequence() || entries.size() == 0) parent.fail(key, "needs at least one layer");
  std::set<std::string> used;
  Shape in = parent.input_shape();
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const LayerEntry entry = parse_layer_entry(
        entries[i], parent.context() + "." + std::string(key) + "[" + std::to_string(i) + "]", i,
        used);
    const ParameterCounter<T>& counter = entry.info->template counter<T>();
    const ShapeRule<T>& shape = entry.info->template shape_rule<T>();
    if (!counter || !shape) return kUncounted;
    for (std::int64_t r = 0; r < entry.repeat; ++r) {
      const LayerConfig<T> config(*entry.own, join_name(parent.name(), entry.copy_name(r)), in,
                                  parent.model(), parent.rng());
      const std::uint64_t count = counter(config);
      if (count == kUncounted) return kUncounted;
      total = count < kUncounted - total ? total + count : kUncounted - 1;  // saturates
      in = shape(config);
    }
  }
  out = in;
  return total;
}

namespace {

template <class T>
LayerConfig<T> slot_config(const LayerConfig<T>& parent, std::string_view key,
                           const std::string& name, const Shape& in, LayerEntry& entry) {
  const ConfigNode node = parent.node(key);
  const std::string where = parent.context() + "." + std::string(key);
  if (node.is_map() && (node.get("name").valid() || node.get("repeat").valid()))
    throw ConfigError(node.mark(), where, "a slot takes no \"name\" or \"repeat\"");
  std::set<std::string> used;
  entry = parse_layer_entry(node, where, 0, used);
  return LayerConfig<T>(*entry.own, name, in, parent.model(), parent.rng(),
                        [&parent](const std::string& n) { return parent.find_parameter(n); });
}

}  // namespace

template <class T>
std::unique_ptr<Layer<T>> build_slot(const LayerConfig<T>& parent, std::string_view key,
                                     const std::string& name, const Shape& in) {
  LayerEntry entry;
  const LayerConfig<T> config = slot_config(parent, key, name, in, entry);
  std::unique_ptr<Layer<T>> layer = build_layer(entry, config);
  const Shape out = layer->output_shape(in);
  if (out != in)
    parent.fail(key, "the " + std::string(key) + " slot must keep its input's shape " +
                         to_string(in) + ", but " + entry.info->type + " gives " + to_string(out));
  return layer;
}

template <class T>
std::uint64_t slot_parameter_count(const LayerConfig<T>& parent, std::string_view key,
                                   const std::string& name, const Shape& in) {
  LayerEntry entry;
  const LayerConfig<T> config = slot_config(parent, key, name, in, entry);
  const ParameterCounter<T>& counter = entry.info->template counter<T>();
  return counter ? counter(config) : kUncounted;
}

#define STRATA_INSTANTIATE_BUILDERS(T)                                                      \
  template std::unique_ptr<Layer<T>> build_layer(const LayerEntry&, const LayerConfig<T>&); \
  template std::vector<std::unique_ptr<Layer<T>>> build_sublayers(const LayerConfig<T>&,    \
                                                                  std::string_view);        \
  template std::unique_ptr<Layer<T>> build_slot(const LayerConfig<T>&, std::string_view,    \
                                                const std::string&, const Shape&);          \
  template std::uint64_t sublayers_parameter_count(const LayerConfig<T>&, std::string_view, \
                                                   Shape&);                                 \
  template std::uint64_t slot_parameter_count(const LayerConfig<T>&, std::string_view,      \
                                              const std::string&, const Shape&);
STRATA_INSTANTIATE_BUILDERS(float)
STRATA_INSTANTIATE_BUILDERS(double)
#undef STRATA_INSTANTIATE_BUILDERS

}  // namespace strata
