#include "layers/transformer_block.hpp"

#include "framework/registry.hpp"
#include "layers/layer_norm.hpp"
#include "layers/residual.hpp"
#include "layers/self_attention.hpp"

namespace strata {

template <class T>
Schema TransformerBlock<T>::schema() {
  return {
      integer_key("dim", kRequired, "model width; must equal the input's feature size", 1, 1 << 16),
      integer_key("hidden", kRequired, "feed-forward hidden width", 1, 1 << 20),
      integer_key("heads", "1", "attention heads; dim must be divisible by it", 1, 1 << 12),
      string_key("norm", "post", "post: ln(x + attn(x)) as RustGPT; pre: x + attn(ln(x)) as GPT-2",
                 {"post", "pre"}),
      string_key("activation", "relu", "feed-forward nonlinearity", {"relu", "gelu"}),
      boolean_key("bias", "false", "attention biases b_q, b_k, b_v (and b_o)"),
      boolean_key("out_proj", "false", "attention output projection W_o"),
      positive_number_key("eps", "1e-5", "LayerNorm epsilon", 1),
      map_key("attention", "{}", "slot: any layer {type: X, ...} instead of SelfAttention"),
      map_key("ffn", "{}", "slot: any layer {type: X, ...} instead of FeedForward"),
      map_key("norm_layer", "{}", "slot: any layer {type: X, ...} instead of both LayerNorms"),
  };
}

namespace {

template <class T>
typename TransformerBlock<T>::Options block_options(const LayerConfig<T>& config) {
  typename TransformerBlock<T>::Options o;
  o.dim = std::size_t(config.integer("dim"));
  o.hidden = std::size_t(config.integer("hidden"));
  o.heads = std::size_t(config.integer("heads"));
  o.norm = config.string("norm") == "pre" ? NormPlacement::pre : NormPlacement::post;
  o.activation = parse_activation(config.string("activation"));
  o.bias = config.boolean("bias");
  o.out_proj = config.boolean("out_proj");
  o.eps = config.number("eps");
  o.max_seq_len = std::size_t(config.model().max_seq_len);
  return o;
}

Shape block_shape(std::int64_t dim) { return {kAnyDim, kAnyDim, dim}; }

}  // namespace

template <class T>
std::uint64_t TransformerBlock<T>::parameter_count(const LayerConfig<T>& config) {
  const auto dim = std::uint64_t(config.integer("dim"));
  const Shape in = block_shape(std::int64_t(dim));
  auto part = [&](std::string_view slot, const char* name, std::uint64_t builtin) {
    return config.has(slot) ? slot_parameter_count(config, slot, join_name(config.name(), name), in)
                            : builtin;
  };
  const std::uint64_t counts[] = {
      part("attention", "attn",
           SelfAttention<T>::parameter_count(dim, config.boolean("bias"),
                                             config.boolean("out_proj"))),
      part("ffn", "ffn",
           FeedForward<T>::parameter_count(dim, std::uint64_t(config.integer("hidden")))),
      part("norm_layer", "ln1", 2 * dim), part("norm_layer", "ln2", 2 * dim)};
  std::uint64_t total = 0;
  for (const std::uint64_t n : counts) {
    if (n == kUncounted) return kUncounted;
    total += n;
  }
  return total;
}

template <class T>
std::unique_ptr<Layer<T>> TransformerBlock<T>::from_config(const LayerConfig<T>& config) {
  const std::int64_t dim = config.matching_features("dim");
  const Options o = block_options(config);
  if (!config.has("attention")) SelfAttention<T>::checked_heads(config, dim);
  if (!config.has("attention") && !config.has("ffn") && !config.has("norm_layer"))
    return std::make_unique<TransformerBlock<T>>(config.name(), o, config.rng());
  // Built in the order of the built-in parts, so the same draws initialise the same parts.
  const std::string& name = config.name();
  const Shape in = block_shape(dim);
  const bool post = o.norm == NormPlacement::post;
  Parts parts;
  auto norm = [&](const char* part) -> std::unique_ptr<Layer<T>> {
    if (config.has("norm_layer"))
      return build_slot(config, "norm_layer", join_name(name, part), in);
    return std::make_unique<LayerNorm<T>>(join_name(name, part), o.dim, o.eps);
  };
  if (config.has("attention")) {
    parts.attn = build_slot(config, "attention", join_name(name, "attn"), in);
  } else {
    parts.attn = std::make_unique<SelfAttention<T>>(join_name(name, "attn"), o.dim, o.heads, o.bias,
                                                    o.out_proj, post, o.max_seq_len, config.rng());
    parts.attn_residual = post;
  }
  parts.ln1 = norm("ln1");
  if (config.has("ffn")) {
    parts.ffn = build_slot(config, "ffn", join_name(name, "ffn"), in);
  } else {
    parts.ffn = std::make_unique<FeedForward<T>>(join_name(name, "ffn"), o.dim, o.hidden,
                                                 o.activation, post, config.rng());
    parts.ffn_residual = post;
  }
  parts.ln2 = norm("ln2");
  return std::make_unique<TransformerBlock<T>>(name, o.norm, o.dim, std::move(parts));
}

template <class T>
typename TransformerBlock<T>::Parts TransformerBlock<T>::builtin_parts(const std::string& name,
                                                                       const Options& o, Rng& rng) {
  // Post-norm: the attention and the MLP add their own residuals (one buffer and one
  // pass fewer than a Residual around them). Pre-norm: the residual skips the norm too.
  const bool post = o.norm == NormPlacement::post;
  Parts parts;
  parts.attn = std::make_unique<SelfAttention<T>>(join_name(name, "attn"), o.dim, o.heads, o.bias,
                                                  o.out_proj, post, o.max_seq_len, rng);
  parts.ln1 = std::make_unique<LayerNorm<T>>(join_name(name, "ln1"), o.dim, o.eps);
  parts.ffn = std::make_unique<FeedForward<T>>(join_name(name, "ffn"), o.dim, o.hidden,
                                               o.activation, post, rng);
  parts.ln2 = std::make_unique<LayerNorm<T>>(join_name(name, "ln2"), o.dim, o.eps);
  parts.attn_residual = parts.ffn_residual = post;
  return parts;
}

template <class T>
TransformerBlock<T>::TransformerBlock(std::string name, const Options& options, Rng& rng)
    : TransformerBlock(name, options.norm, options.dim, builtin_parts(name, options, rng)) {}

template <class T>
TransformerBlock<T>::TransformerBlock(std::string name, NormPlacement norm, std::size_t dim,
                                      Parts parts)
    : Sequential<T>(name), dim_(dim) {
  auto residual = [&](const char* branch, std::unique_ptr<Layer<T>> first,
                      std::unique_ptr<Layer<T>> second) {
    auto body = std::make_unique<Sequential<T>>(join_name(name, branch));
    if (first) body->add(std::move(first));
    body->add(std::move(second));
    return std::make_unique<Residual<T>>(join_name(name, branch), std::move(body));
  };
  if (norm == NormPlacement::pre) {
    this->add(residual("attn_branch", std::move(parts.ln1), std::move(parts.attn)));
    this->add(residual("ffn_branch", std::move(parts.ln2), std::move(parts.ffn)));
    return;
  }
  this->add(parts.attn_residual ? std::move(parts.attn)
                                : residual("attn_branch", nullptr, std::move(parts.attn)));
  this->add(std::move(parts.ln1));
  this->add(parts.ffn_residual ? std::move(parts.ffn)
                               : residual("ffn_branch", nullptr, std::move(parts.ffn)));
  this->add(std::move(parts.ln2));
}

template <class T>
Shape TransformerBlock<T>::output_shape(const Shape& in) const {
  if (in.size() != 3 || (in.back() != kAnyDim && in.back() != std::int64_t(dim_)))
    throw ShapeError("TransformerBlock expects input (batch, seq, " + std::to_string(dim_) +
                     "), got " + to_string(in));
  return Sequential<T>::output_shape(in);
}

template class TransformerBlock<float>;
template class TransformerBlock<double>;

}  // namespace strata
