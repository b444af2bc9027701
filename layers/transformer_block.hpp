// TransformerBlock: causal self-attention and a feed-forward MLP, each with a residual
// connection and a LayerNorm, in post-norm (RustGPT) or pre-norm (GPT-2) order.
//
//   post:  a = x + attn(x);        y = ln1(a);   f = y + ffn(y);   out = ln2(f)
//   pre:   a = x + attn(ln1(x));   out = a + ffn(ln2(a))
//
// Shapes: x (batch, seq, dim) -> out (batch, seq, dim).
// Sublayers: SelfAttention <name>.attn, LayerNorm <name>.ln1, FeedForward <name>.ffn
// (<name>.ffn.fc1, .act, .fc2), LayerNorm <name>.ln2, built (and initialised) in that order.
// Post-norm uses the sublayers' own residuals; pre-norm turns them off and adds the
// residuals here, around the normalised branches.
// Cached: what the sublayers cache, plus a (pre-norm) for backward.
// Accumulates: every sublayer's parameter grads. parameters() lists them all.
// forward_cached/reset_cache delegate to the sublayers (the attention keeps the KV cache;
// the others are position-wise).
// Config: {type: TransformerBlock, dim: D, hidden: H, heads: 1, norm: post,
//          activation: relu, bias: false, out_proj: false, eps: 1e-5}.
#pragma once

#include <array>

#include "framework/layer.hpp"
#include "framework/layer_config.hpp"
#include "layers/feed_forward.hpp"
#include "layers/layer_norm.hpp"
#include "layers/self_attention.hpp"

namespace strata {

enum class NormPlacement { post, pre };

template <class T>
class TransformerBlock : public Layer<T> {
 public:
  static constexpr const char* kSummary =
      "causal self-attention + feed-forward, residuals and LayerNorms (post- or pre-norm)";
  static Schema schema();
  static std::unique_ptr<Layer<T>> from_config(const LayerConfig<T>& config);
  // Attention + feed-forward + two LayerNorms, from the config alone (the memory budget).
  static std::uint64_t parameter_count(const LayerConfig<T>& config);

  struct Options {
    std::size_t dim = 0, hidden = 0, heads = 1;
    NormPlacement norm = NormPlacement::post;
    Activation activation = Activation::relu;
    bool bias = false;      // attention biases b_q, b_k, b_v (b_o)
    bool out_proj = false;  // attention output projection W_o
    double eps = 1e-5;      // LayerNorm epsilon
    std::size_t max_seq_len = 0;
  };
  TransformerBlock(std::string name, const Options& options, Rng& rng);

  std::string_view type() const override { return "TransformerBlock"; }
  const Tensor<T>& forward(const Tensor<T>& x, Mode mode) override;
  const Tensor<T>& backward(const Tensor<T>& dy) override;
  std::vector<Parameter<T>*> parameters() override;
  Shape output_shape(const Shape& in) const override;

  bool keeps_input() const override;
  void release_output() override;
  void release_input_grad() override;

  void reset_cache() override;
  const Tensor<T>& forward_cached(const Tensor<T>& x, std::size_t start) override;

 private:
  Options options_;
  std::unique_ptr<SelfAttention<T>> attn_;
  std::unique_ptr<LayerNorm<T>> ln1_;
  std::unique_ptr<FeedForward<T>> ffn_;
  std::unique_ptr<LayerNorm<T>> ln2_;
  Tensor<T> a_, output_, d_a_, input_grad_;  // pre-norm only
};

}  // namespace strata
