// TransformerBlock: causal self-attention and a feed-forward MLP, each with a residual
// connection and a norm, in post-norm (RustGPT) or pre-norm (GPT-2) order.
//
//   post:  a = x + attn(x);        y = ln1(a);   f = y + ffn(y);   out = ln2(f)
//   pre:   a = x + attn(ln1(x));   out = a + ffn(ln2(a))
//
// It is a Sequential built from those parts: post-norm [attn, ln1, ffn, ln2] (a part
// without a residual of its own wrapped in a Residual), pre-norm
// [Residual(ln1, attn), Residual(ln2, ffn)].
// Shapes: x (batch, seq, dim) -> out (batch, seq, dim).
// Sublayers: <name>.attn, <name>.ln1, <name>.ffn (<name>.ffn.fc1, .act, .fc2), <name>.ln2,
// built (and initialised) in that order. By default SelfAttention, LayerNorm and
// FeedForward from the block's keys; slots replace them with any registered layer that
// keeps the shape (plugins included):
//   attention: {type: X, ...}   ffn: {type: SwiGLU, hidden: 512}   norm_layer: {type: RMSNorm}
// (norm_layer fills both ln1 and ln2). The keys a slot makes moot (heads, hidden, ...)
// are then ignored.
// Cached, accumulates: as its parts. Decoding state: the attention's KV cache.
// Config: {type: TransformerBlock, dim: D, hidden: H, heads: 1, norm: post,
//          activation: relu, bias: false, out_proj: false, eps: 1e-5}.
#pragma once

#include "layers/feed_forward.hpp"
#include "layers/sequential.hpp"

namespace strata {

enum class NormPlacement { post, pre };

template <class T>
class TransformerBlock : public Sequential<T> {
 public:
  static constexpr const char* kSummary =
      "causal self-attention + feed-forward, residuals and norms (post- or pre-norm, slots)";
  static constexpr const char* kExample =
      "{dim: 4, hidden: 6, heads: 2, norm: pre, activation: gelu, bias: true, out_proj: true}";
  static Shape example_input() { return {2, 3, 4}; }
  static Schema schema();
  static std::unique_ptr<Layer<T>> from_config(const LayerConfig<T>& config);
  // Its parts' counts from the config alone (the memory budget); kUncounted when a
  // slot's type has no counter.
  static std::uint64_t parameter_count(const LayerConfig<T>& config);
  // Its output keeps the input's shape (the memory budget counts the layers after it).
  static Shape config_output_shape(const LayerConfig<T>& config) { return config.input_shape(); }

  struct Options {
    std::size_t dim = 0, hidden = 0, heads = 1;
    NormPlacement norm = NormPlacement::post;
    Activation activation = Activation::relu;
    bool bias = false;      // attention biases b_q, b_k, b_v (b_o)
    bool out_proj = false;  // attention output projection W_o
    double eps = 1e-5;      // LayerNorm epsilon
    std::size_t max_seq_len = 0;
  };
  // The four parts; `*_residual`: the part adds its own residual (post-norm only).
  struct Parts {
    std::unique_ptr<Layer<T>> attn, ln1, ffn, ln2;
    bool attn_residual = false, ffn_residual = false;
  };
  // The built-in parts (SelfAttention, LayerNorm, FeedForward) from `options`.
  TransformerBlock(std::string name, const Options& options, Rng& rng);
  TransformerBlock(std::string name, NormPlacement norm, std::size_t dim, Parts parts);

  std::string_view type() const override { return "TransformerBlock"; }
  Shape output_shape(const Shape& in) const override;

 private:
  static Parts builtin_parts(const std::string& name, const Options& options, Rng& rng);
  std::size_t dim_;
};

}  // namespace strata
