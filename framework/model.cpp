#include "framework/model.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <new>
#include <optional>
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
  try {
    last_output_ = &forward_chain(layers_, x, mode);
  } catch (const std::bad_alloc&) {
    throw Error(forward_out_of_memory(x));
  }
  return *last_output_;
}

template <class T>
const Tensor<T>& Model<T>::forward(const Tensor<T>& x, Mode mode, const Alongside& alongside) {
  try {
    last_output_ = &forward_chain(layers_, x, mode, &alongside);
  } catch (const std::bad_alloc&) {
    throw Error(forward_out_of_memory(x));
  }
  return *last_output_;
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
  if (!layers_.empty() && last_output_) layers_.back()->release(*last_output_);
  last_output_ = nullptr;
}

template <class T>
void Model<T>::reset_state() {
  for (auto& layer : layers_) layer->reset_state();
}

template <class T>
const Tensor<T>& Model<T>::forward_step(const Tensor<T>& x, std::size_t start) {
  return step_chain(layers_, x, start);
}

std::string human_bytes(double bytes);  // below

// A bad_alloc in forward names the batch and the largest output it needs, the usual
// culprit (the logits: batch x positions x vocabulary).
template <class T>
std::string Model<T>::forward_out_of_memory(const Tensor<T>& x) const {
  const std::size_t rows = x.dimension() >= 2 ? x.shape()[0] * x.shape()[1] : x.size();
  std::size_t largest = 0;
  for (std::size_t i = 1; i < layers_.size(); ++i)
    if (output_shapes_[i].back() > output_shapes_[largest].back()) largest = i;
  const double bytes =
      double(rows) * double(std::max<std::int64_t>(output_shapes_[largest].back(), 1)) * sizeof(T);
  std::ostringstream out;
  out << "out of memory in the forward pass of " << rows << " positions (input "
      << to_string(Shape(x.shape().begin(), x.shape().end())) << "); the largest output, layer "
      << layers_[largest]->name() << " (" << layers_[largest]->type() << ") "
      << to_string(output_shapes_[largest]) << ", takes " << human_bytes(bytes)
      << " per copy, beside " << parameter_count() << " parameters: use a smaller batch, "
      << "shorter sequences or a smaller vocabulary";
  return out.str();
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

}  // namespace

// 2.5e9 -> "2.5 GB", 3e5 -> "300.0 kB"
std::string human_bytes(double bytes) {
  const char* unit = bytes >= 1e9 ? "GB" : bytes >= 1e6 ? "MB" : bytes >= 1e3 ? "kB" : "bytes";
  const double scale = bytes >= 1e9 ? 1e9 : bytes >= 1e6 ? 1e6 : bytes >= 1e3 ? 1e3 : 1;
  std::ostringstream out;
  out << std::fixed << std::setprecision(scale > 1 ? 1 : 0) << bytes / scale << " " << unit;
  return out.str();
}

namespace {

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
  const MemoryBudget memory = memory_budget();
  budget.limit = memory.bytes / kBytesPerParameter;
  budget.explanation = "the memory budget of " + human_bytes(double(memory.bytes)) + " (" +
                       memory.source + ") at " + std::to_string(kBytesPerParameter) +
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

// The first pass: sums the counts of the model's layers from their configs alone, each
// fed the shape the one before it outputs, and refuses at the first layer that takes the
// total over the budget, before any layer is built (building the layers before it could
// take minutes and gigabytes). It stops at a layer without a counter and a shape rule (a
// plugin's, measured once built) and at any error, which the build then reports at its
// layer: the pass adds no refusal but this one.
template <class T>
void refuse_over_budget_counts(const ConfigNode& entries, const Shape& input,
                               const ModelContext& context, const ParameterBudget& budget) {
  std::set<std::string> used_names;
  Rng unused(0);  // counters draw nothing
  Shape in = input;
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    std::optional<LayerEntry> entry;
    try {
      entry =
          parse_layer_entry(entries[i], "model.layers[" + std::to_string(i) + "]", i, used_names);
    } catch (const std::runtime_error&) {
      return;
    }
    const ParameterCounter<T>& counter = entry->info->template counter<T>();
    const ShapeRule<T>& shape = entry->info->template shape_rule<T>();
    if (!counter || !shape) return;
    for (std::int64_t r = 0; r < entry->repeat; ++r) {
      const std::string full_name = entry->copy_name(r);
      std::uint64_t count = kUncounted;
      try {
        const LayerConfig<T> config(*entry->own, full_name, in, context, unused);
        count = counter(config);
        if (count != kUncounted && count <= budget.limit && total <= budget.limit - count)
          in = shape(config);
      } catch (const std::runtime_error&) {
        return;
      }
      if (count == kUncounted) return;
      if (count > budget.limit || total > budget.limit - count)
        throw ConfigError(entry->mark, entry->context,
                          refusal(full_name, count, total + count, budget));
      total += count;
    }
  }
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

namespace {

// A number from the first line of a file, or nullopt (missing file, "max").
std::optional<std::uint64_t> number_in_file(const char* path) {
  std::ifstream in(path);
  std::uint64_t value = 0;
  if (in >> value) return value;
  return std::nullopt;
}

// Bytes of address space the process maps now (shared libraries, stacks, heap).
std::uint64_t address_space_in_use() {
  std::ifstream in("/proc/self/statm");
  std::uint64_t pages = 0;
  in >> pages;
  return pages * std::uint64_t(::sysconf(_SC_PAGE_SIZE));
}

// The tightest of the process's limits: the physical memory, `ulimit -v` / `ulimit -d`
// (less what is already mapped) and the cgroup's memory limit (less what it uses).
MemoryBudget budget_from_limits() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGE_SIZE);
  MemoryBudget budget{std::uint64_t(1) << 34, "16 GiB: this machine's memory is unknown"};
  if (pages > 0 && page_size > 0)
    budget = {std::uint64_t(pages) * std::uint64_t(page_size), "this machine's memory"};
  auto consider = [&](std::uint64_t limit, std::uint64_t used, const char* source) {
    const std::uint64_t left = limit > used ? limit - used : 0;
    if (left < budget.bytes) budget = {left, source};
  };
  const std::uint64_t mapped = address_space_in_use();
  rlimit limit{};
  if (::getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
    consider(limit.rlim_cur, mapped, "the address-space limit, ulimit -v");
  if (::getrlimit(RLIMIT_DATA, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
    consider(limit.rlim_cur, mapped, "the data-segment limit, ulimit -d");
  if (auto max = number_in_file("/sys/fs/cgroup/memory.max"))  // cgroup v2
    consider(*max, number_in_file("/sys/fs/cgroup/memory.current").value_or(0),
             "the cgroup's memory.max");
  if (auto max = number_in_file("/sys/fs/cgroup/memory/memory.limit_in_bytes"))  // v1
    consider(*max, number_in_file("/sys/fs/cgroup/memory/memory.usage_in_bytes").value_or(0),
             "the cgroup's memory.limit_in_bytes");
  return budget;
}

// What a failed allocation while building `layer` says (instead of std::bad_alloc).
std::string out_of_memory(const std::string& layer, const std::string& type,
                          std::uint64_t layer_parameters, std::uint64_t built_parameters,
                          std::size_t value_bytes) {
  std::string needs = layer_parameters
                          ? ", which needs " + grouped(layer_parameters) + " parameters (" +
                                human_bytes(double(layer_parameters) * 2 * double(value_bytes)) +
                                " with their gradients)"
                          : "";
  const MemoryBudget memory = memory_budget();
  return "out of memory building layer " + layer + " (" + type + ")" + needs + ", after " +
         grouped(built_parameters) + " parameters of the layers before it; the memory budget is " +
         human_bytes(double(memory.bytes)) + " (" + memory.source + "): make the model smaller";
}

}  // namespace

MemoryBudget memory_budget() {
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
    return {std::uint64_t(value * scale), "STRATA_MEMORY_BUDGET"};
  }
  return budget_from_limits();
}

std::uint64_t memory_budget_bytes() { return memory_budget().bytes; }

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
  refuse_over_budget_counts<T>(entries, input, context, budget);
  std::set<std::string> used_names;

  for (std::size_t i = 0; i < entries.size(); ++i) {
    const LayerEntry entry =
        parse_layer_entry(entries[i], "model.layers[" + std::to_string(i) + "]", i, used_names);
    for (std::int64_t r = 0; r < entry.repeat; ++r) {
      const std::string full_name = entry.copy_name(r);
      const Shape in = model.layers().empty() ? model.input_shape() : model.output_shape_of_last();
      LayerConfig<T> config(*entry.own, full_name, in, context, rng,
                            [&model](const std::string& n) { return model.find_parameter(n); });
      const std::uint64_t before = model.parameter_count();
      const ParameterCounter<T>& counter = entry.info->template counter<T>();
      const std::uint64_t expected = counter ? counter(config) : kUncounted;
      if (expected != kUncounted && (expected > budget.limit || before + expected > budget.limit))
        throw ConfigError(entry.mark, entry.context,  // refused before allocating
                          refusal(full_name, expected, before + expected, budget));
      try {
        model.add(build_layer(entry, config));
      } catch (const std::bad_alloc&) {
        throw Error(out_of_memory(full_name, entry.info->type,
                                  expected == kUncounted ? 0 : expected, before, sizeof(T)));
      }
      const std::uint64_t added = model.parameter_count() - before;
      if (expected != kUncounted && added != expected)
        throw Error("layer type " + entry.info->type + " (" + entry.info->origin +
                    "): parameter_count() said " + std::to_string(expected) + " for " + full_name +
                    " but it allocated " + std::to_string(added) + " (a bug in the layer)");
      if (expected == kUncounted && before + added > budget.limit)
        throw ConfigError(entry.mark, entry.context,
                          refusal(full_name, added, before + added, budget));
    }
  }
  return model;
}

template <class T>
void require_vocabulary_output(const Model<T>& model, const ConfigNode& model_node) {
  const Shape out = model.output_shape_of_last();
  if (model.vocab_size <= 0 || model.layers().empty() ||
      (!out.empty() && out.back() == model.vocab_size))
    return;
  const ConfigNode entries = model_node.get("layers");
  const ConfigNode last = entries[entries.size() - 1];
  const Layer<T>& layer = *model.layers().back();
  const std::string features = out.empty() || out.back() == kAnyDim
                                   ? "an unknown number of features"
                                   : std::to_string(out.back()) + " features";
  throw ConfigError(last.mark(),
                    "model.layers[" + std::to_string(entries.size() - 1) + "] (" +
                        std::string(layer.type()) + " \"" + layer.name() + "\")",
                    "the last layer must output one score per vocabulary token: its output " +
                        to_string(out) + " has " + features + ", the vocabulary has " +
                        std::to_string(model.vocab_size) +
                        " tokens (end the model with OutputProjection)");
}

template class Model<float>;
template class Model<double>;
template Model<float> build_model<float>(const ConfigNode&, std::int64_t, Rng&, const Shape&);
template Model<double> build_model<double>(const ConfigNode&, std::int64_t, Rng&, const Shape&);
template void require_vocabulary_output<float>(const Model<float>&, const ConfigNode&);
template void require_vocabulary_output<double>(const Model<double>&, const ConfigNode&);

}  // namespace strata
