// A model: an ordered list of layers, built from the `model:` section of a config.
//
//   model:
//     max_seq_len: 80
//     layers:
//       - {type: Embedding, dim: 128}
//       - {type: TransformerBlock, name: blocks, repeat: 3, dim: 128, hidden: 256}
//       - {type: OutputProjection}
//
// `repeat: N` expands an entry into N layers named name.0 ... name.N-1; a layer's
// parameters are named under its name ("blocks.1.attn.w_q"). Every layer validates
// its own keys, and shapes are inferred layer by layer before any tensor is
// allocated, so a config that does not chain is refused with file:line:col.
//
// Memory budget: before a layer is built, its parameter count is computed from its
// config (LayerInfo::counter, see registry.hpp) and the model is refused, at that
// layer's file:line:col, if the total would pass the budget: `model.max_parameters`
// when given, else as many parameters as fit in memory_budget_bytes() at 4 values each
// (value, gradient, two optimizer slots). A layer without a counter (a plugin that
// does not declare one) is measured right after it is built instead.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "framework/chain.hpp"
#include "framework/config.hpp"
#include "framework/rng.hpp"

namespace strata {

// The input of a language model: token ids (batch, seq).
inline Shape token_ids_input() { return {kAnyDim, kAnyDim}; }

template <class T>
class Model {
 public:
  Model() = default;
  Model(Model&&) noexcept = default;
  Model& operator=(Model&&) noexcept = default;

  // Appends a layer; its input is the previous layer's output (checked by output_shape).
  void add(std::unique_ptr<Layer<T>> layer);

  // x: the model's input (input_shape(): token ids (batch, seq), or feature rows
  // (batch, F)) -> the last layer's output (e.g. logits (batch, seq, V)).
  const Tensor<T>& forward(const Tensor<T>& x, Mode mode);
  // The same, with `alongside`'s tasks for layer i sharing the thread pool with layer
  // i's forward (forward_chain): the trainer finishes the previous step's update there,
  // the parameters first used by layer i + 1 while layer i computes.
  const Tensor<T>& forward(const Tensor<T>& x, Mode mode, const Alongside& alongside);
  // dy: dL/d(output). Adds every parameter's gradient; returns dL/d(input).
  const Tensor<T>& backward(const Tensor<T>& dy);
  // The same, calling completed(params) as soon as those parameters' gradients are
  // final: right after the backward of the first layer that uses them (a tied table's
  // after its earlier use), each parameter once, while the gradients are still in
  // cache. The trainer sums the squared gradients for clipping there.
  using GradientsDone = std::function<void(const std::vector<Parameter<T>*>&)>;
  const Tensor<T>& backward(const Tensor<T>& dy, const GradientsDone& completed);
  // The caller is done with forward's output (the trainer, once the loss has its
  // gradient): large logits are freed before backward allocates its gradients.
  void release_output();

  // Incremental decoding with the layers' state (KV cache in attention).
  void reset_state();
  const Tensor<T>& forward_step(const Tensor<T>& x, std::size_t start);

  // Each parameter once, in layer order (a tied parameter is listed once).
  const std::vector<Parameter<T>*>& parameters() const { return parameters_; }
  // The parameters layer i is the first to use (a tied table belongs to its first user);
  // over all layers, each parameter once.
  const std::vector<Parameter<T>*>& parameters_first_used_by(std::size_t layer) const {
    return first_used_by_.at(layer);
  }
  Parameter<T>* find_parameter(const std::string& name) const;
  void zero_grad();
  // Every layer's training-time generators, in layer order (see Layer::random_generators).
  std::vector<Rng*> random_generators() const;
  std::size_t parameter_count() const;

  const std::vector<std::unique_ptr<Layer<T>>>& layers() const { return layers_; }
  Shape input_shape() const { return input_shape_; }
  Shape output_shape_of_last() const {
    return output_shapes_.empty() ? input_shape() : output_shapes_.back();
  }
  // A table: name, type, output shape, parameters per layer, and the total.
  std::string summary() const;

  // Token-id models only (0 for feature input).
  std::int64_t vocab_size = 0;
  std::int64_t max_seq_len = 0;

 private:
  std::string forward_out_of_memory(const Tensor<T>& x) const;

  template <class U>
  friend Model<U> build_model(const ConfigNode&, std::int64_t, Rng&, const Shape&);
  Shape input_shape_ = token_ids_input();
  std::vector<std::unique_ptr<Layer<T>>> layers_;
  const Tensor<T>* last_output_ = nullptr;  // forward's, for release_output
  std::vector<Shape> output_shapes_;
  std::vector<Parameter<T>*> parameters_;
  std::vector<std::vector<Parameter<T>*>> first_used_by_;  // per layer: parameters new in it
};

// Builds the model described by `model_node` (the `model:` mapping). `vocab_size` is
// the tokenizer's (0: the config must give `vocab_size:`). Draws initial weights from
// `rng`. `input` is the first layer's input: token ids (which need `max_seq_len:`), or
// feature rows {kAnyDim, F} (a classifier; no vocab_size or max_seq_len). Config
// problems throw ConfigError.
template <class T>
Model<T> build_model(const ConfigNode& model_node, std::int64_t vocab_size, Rng& rng,
                     const Shape& input = token_ids_input());

// A language model's last layer gives one score per vocabulary token: refuses, at the
// last layer's file:line:col in `model_node`, an output whose feature size is not
// model.vocab_size (training would fail at the first target id past it, or learn
// nothing about the tokens it cannot score). No-op while the vocabulary is unknown (0).
template <class T>
void require_vocabulary_output(const Model<T>& model, const ConfigNode& model_node);

// Bytes a model may use for training: $STRATA_MEMORY_BUDGET ("512M", "8G", or bytes)
// when set, else the tightest of the machine's physical memory, the process's
// RLIMIT_AS / RLIMIT_DATA (`ulimit -v` / `-d`, less the address space already mapped)
// and the cgroup's memory limit (v2 memory.max, v1 memory.limit_in_bytes, less its
// usage). Throws Error for a malformed STRATA_MEMORY_BUDGET.
struct MemoryBudget {
  std::uint64_t bytes = 0;
  std::string source;  // which limit set it, e.g. "the address-space limit, ulimit -v"
};
MemoryBudget memory_budget();
std::uint64_t memory_budget_bytes();  // memory_budget().bytes

}  // namespace strata
