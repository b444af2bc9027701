#include "framework/model.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <iomanip>
#include <set>
#include <sstream>

#include "framework/registry.hpp"

namespace strata {

template <class T>
void Model<T>::add(std::unique_ptr<Layer<T>> layer) {
  const Shape in = output_shapes_.empty() ? input_shape() : output_shapes_.back();
  output_shapes_.push_back(layer->output_shape(in));
  first_used_by_.emplace_back();
  for (Parameter<T>* p : layer->parameters())
    if (std::find(parameters_.begin(), parameters_.end(), p) == parameters_.end()) {
      parameters_.push_back(p);
      first_used_by_.back().push_back(p);
    }
  layers_.push_back(std::move(layer));
}

template <class T>
const Tensor<T>& Model<T>::forward(const Tensor<T>& x, Mode mode) {
  return forward_chain(layers_, x, mode);
}

template <class T>
const Tensor<T>& Model<T>::forward(const Tensor<T>& x, Mode mode, const Alongside& alongside) {
  return forward_chain(layers_, x, mode, &alongside);
}

template <class T>
const Tensor<T>& Model<T>::backward(const Tensor<T>& dy) {
  return backward_chain(layers_, dy);
}

template <class T>
const Tensor<T>& Model<T>::backward(const Tensor<T>& dy, const GradientsDone& completed) {
  return backward_chain(layers_, dy, [&](std::size_t i) {
    if (!first_used_by_[i].empty()) completed(first_used_by_[i]);
  });
}

template <class T>
void Model<T>::release_output() {
  if (!layers_.empty()) layers_.back()->release_output();
}

template <class T>
void Model<T>::reset_cache() {
  for (auto& layer : layers_) layer->reset_cache();
}

template <class T>
const Tensor<T>& Model<T>::forward_cached(const Tensor<T>& x, std::size_t start) {
  const Tensor<T>* h = &x;
  for (auto& layer : layers_) h = &layer->forward_cached(*h, start);
  return *h;
}

template <class T>
Parameter<T>* Model<T>::find_parameter(const std::string& name) const {
  for (Parameter<T>* p : parameters_)
    if (p->name == name) return p;
  return nullptr;
}

template <class T>
std::vector<Rng*> Model<T>::random_generators() const {
  std::vector<Rng*> out;
  for (const auto& layer : layers_) layer->random_generators(out);
  return out;
}

template <class T>
void Model<T>::zero_grad() {
  for (Parameter<T>* p : parameters_) std::fill(p->grad.begin(), p->grad.end(), T(0));
}

template <class T>
std::size_t Model<T>::parameter_count() const {
  std::size_t n = 0;
  for (const Parameter<T>* p : parameters_) n += p->value.size();
  return n;
}

template <class T>
std::string Model<T>::summary() const {
  std::ostringstream out;
  out << std::left << std::setw(22) << "layer" << std::setw(18) << "type" << std::setw(18)
      << "output shape" << std::right << std::setw(12) << "parameters"
      << "\n";
  std::set<const Parameter<T>*> counted;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    std::size_t n = 0;
    for (const Parameter<T>* p : layers_[i]->parameters())
      if (counted.insert(p).second) n += p->value.size();  // tied weights count once
    out << std::left << std::setw(22) << layers_[i]->name() << std::setw(18) << layers_[i]->type()
        << std::setw(18) << to_string(output_shapes_[i]) << std::right << std::setw(12) << n
        << "\n";
  }
  out << "total parameters: " << parameter_count() << "\n";
  return out.str();
}

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

const Schema& model_schema() {
  static const Schema schema = {
      integer_key("max_seq_len", "0",
                  "longest sequence the model accepts (token-id input: required)", 1, 1 << 20),
      integer_key("vocab_size", "0", "vocabulary size; 0 = from the tokenizer", 0, 1 << 24),
      integer_key("max_parameters", "0",
                  "refuse a larger model before allocating it; 0 = what fits in memory", 0, 1e15),
      sequence_key("layers", kRequired, "the layers, in order"),
  };
  return schema;
}

// 1234567 -> "1,234,567"
std::string grouped(std::uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// 2.5e9 -> "2.5 GB", 3e5 -> "300.0 kB"
std::string human_bytes(double bytes) {
  const char* unit = bytes >= 1e9 ? "GB" : bytes >= 1e6 ? "MB" : bytes >= 1e3 ? "kB" : "bytes";
  const double scale = bytes >= 1e9 ? 1e9 : bytes >= 1e6 ? 1e6 : bytes >= 1e3 ? 1e3 : 1;
  std::ostringstream out;
  out << std::fixed << std::setprecision(scale > 1 ? 1 : 0) << bytes / scale << " " << unit;
  return out.str();
}

// The most parameters a model may have, and how to say why.
struct ParameterBudget {
  std::uint64_t limit = 0;
  std::uint64_t bytes_per_parameter = 0;
  std::string explanation;  // completes "... over <explanation>"
};

template <class T>
ParameterBudget parameter_budget(const ConfigSection& section) {
  constexpr std::uint64_t kBytesPerParameter = 4 * sizeof(T);  // value, grad, 2 slots
  ParameterBudget budget;
  budget.bytes_per_parameter = kBytesPerParameter;
  if (section.integer("max_parameters") > 0) {
    budget.limit = std::uint64_t(section.integer("max_parameters"));
    budget.explanation = "model.max_parameters (" + grouped(budget.limit) + ")";
    return budget;
  }
  const std::uint64_t bytes = memory_budget_bytes();
  budget.limit = bytes / kBytesPerParameter;
  budget.explanation =
      "the memory budget of " + human_bytes(double(bytes)) + " (" +
      (std::getenv("STRATA_MEMORY_BUDGET") ? "STRATA_MEMORY_BUDGET" : "this machine's memory") +
      ") at " + std::to_string(kBytesPerParameter) +
      " bytes per parameter (value, gradient, two optimizer slots); "
      "set model.max_parameters to allow more";
  return budget;
}

std::string refusal(const std::string& layer, std::uint64_t layer_parameters,
                    std::uint64_t model_parameters, const ParameterBudget& budget) {
  return "model too large: layer " + layer + " has " + grouped(layer_parameters) +
         " parameters, bringing the model to " + grouped(model_parameters) + " (" +
         human_bytes(double(model_parameters) * double(budget.bytes_per_parameter)) +
         " to train), over " + budget.explanation;
}

// max_seq_len is required for token ids, and it and vocab_size are refused for features.
void check_input_keys(const ConfigSection& section, const Shape& input) {
  const bool token_ids = input == token_ids_input();
  if (token_ids && !section.has("max_seq_len"))
    throw ConfigError(section.self().mark(), "model",
                      "missing required key \"max_seq_len\" (integer: longest sequence the "
                      "model accepts; a model of token ids needs it)");
  for (const char* key : {"max_seq_len", "vocab_size"})
    if (!token_ids && section.has(key))
      section.fail(key, std::string(key) + " is for token-id input; this model's input is " +
                            to_string(input) + " (the task's feature rows)");
}

}  // namespace

std::uint64_t memory_budget_bytes() {
  if (const char* text = std::getenv("STRATA_MEMORY_BUDGET")) {
    char* end = nullptr;
    errno = 0;
    const double value = std::strtod(text, &end);
    double scale = 1;
    if (end && *end) {  // an optional k, M, G or T suffix (powers of 1000)
      const auto unit = std::string_view("kmgt").find(char(std::tolower(*end)));
      if (unit != std::string_view::npos) scale = std::pow(1e3, double(unit + 1)), ++end;
    }
    if (end == text || *end != '\0' || errno || !(value > 0) || value * scale > 1e18)
      throw Error(std::string("STRATA_MEMORY_BUDGET=\"") + text +
                  "\": expected a positive size in bytes, e.g. 512M or 8G");
    return std::uint64_t(value * scale);
  }
  const long pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return std::uint64_t(1) << 34;  // unknown: 16 GiB
  return std::uint64_t(pages) * std::uint64_t(page_size);
}

template <class T>
Model<T> build_model(const ConfigNode& model_node, std::int64_t vocab_size, Rng& rng,
                     const Shape& input) {
  const ConfigSection section(model_node, "model", model_schema());
  const ConfigNode entries = section.node("layers");
  if (entries.size() == 0) section.fail("layers", "needs at least one layer");
  check_input_keys(section, input);

  Model<T> model;
  model.input_shape_ = input;
  model.max_seq_len = section.integer("max_seq_len");
  model.vocab_size = section.integer("vocab_size") > 0 ? section.integer("vocab_size") : vocab_size;
  const ModelContext context{model.vocab_size, model.max_seq_len};
  const ParameterBudget budget = parameter_budget<T>(section);
  std::set<std::string> used_names;

  for (std::size_t i = 0; i < entries.size(); ++i) {
    const ConfigNode entry = entries[i];
    const std::string where = "model.layers[" + std::to_string(i) + "]";
    if (!entry.is_map())
      throw ConfigError(entry.mark(), where, "expected a mapping with a \"type\"");
    const ConfigNode type_node = entry.get("type");
    if (!type_node.is_scalar())
      throw ConfigError(entry.mark(), where, "missing required key \"type\" (a layer type name)");
    const std::string type = type_node.scalar();
    const LayerInfo* info = nullptr;
    try {
      info = &layer_registry().find(type);
    } catch (const UnknownName& e) {
      throw ConfigError(type_node.mark(), where, e.what());
    }
    const Schema generic = {string_key("name", "", "layer name (default: the type in snake_case)"),
                            integer_key("repeat", "1", "expand into this many copies", 1, 1000)};
    const ConfigSection common(entry, where + " (" + type + ")", generic, [&] {
      std::vector<std::string> keys{"type"};
      for (const auto& s : info->schema) keys.push_back(s.name);
      return keys;
    }());
    std::string name = common.string("name");
    if (name.empty()) name = snake_case(type);
    if (!used_names.insert(name).second) {
      if (common.has("name")) common.fail("name", "layer name \"" + name + "\" is already used");
      name += '_';  // two appends: GCC 12 -Warray-bounds false positive on "_" + ...
      name += std::to_string(i);
      used_names.insert(name);
    }
    const std::string context_text = where + " (" + type + " \"" + name + "\")";
    const ConfigSection own(entry, context_text, info->schema, {"type", "name", "repeat"});
    const std::int64_t repeat = common.integer("repeat");

    for (std::int64_t r = 0; r < repeat; ++r) {
      const std::string full_name = common.has("repeat") ? name + "." + std::to_string(r) : name;
      const Shape in = model.layers().empty() ? model.input_shape() : model.output_shape_of_last();
      LayerConfig<T> config(own, full_name, in, context, rng,
                            [&model](const std::string& n) { return model.find_parameter(n); });
      const std::uint64_t before = model.parameter_count();
      const ParameterCounter<T>& counter = info->template counter<T>();
      std::uint64_t expected = 0;
      if (counter) {  // refuse before allocating
        expected = counter(config);
        if (expected > budget.limit || before + expected > budget.limit)
          throw ConfigError(entry.mark(), context_text,
                            refusal(full_name, expected, before + expected, budget));
      }
      std::unique_ptr<Layer<T>> layer;
      try {
        layer = info->template factory<T>()(config);
        model.add(std::move(layer));
      } catch (const ShapeError& e) {
        throw ConfigError(entry.mark(), context_text,
                          std::string("shapes do not chain: ") + e.what());
      }
      const std::uint64_t added = model.parameter_count() - before;
      if (counter && added != expected)
        throw Error("layer type " + type + " (" + info->origin + "): parameter_count() said " +
                    std::to_string(expected) + " for " + full_name + " but it allocated " +
                    std::to_string(added) + " (a bug in the layer)");
      if (!counter && before + added > budget.limit)
        throw ConfigError(entry.mark(), context_text,
                          refusal(full_name, added, before + added, budget));
    }
  }
  return model;
}

template class Model<float>;
template class Model<double>;
template Model<float> build_model<float>(const ConfigNode&, std::int64_t, Rng&, const Shape&);
template Model<double> build_model<double>(const ConfigNode&, std::int64_t, Rng&, const Shape&);

}  // namespace strata
