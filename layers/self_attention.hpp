// SelfAttention: causal multi-head scaled dot-product self-attention.
//
// Shapes: x (batch, seq, dim) -> y (batch, seq, dim).
//   Q = x W_q (+ b_q), K = x W_k (+ b_k), V = x W_v (+ b_v)            (each (batch, seq, dim))
//   per head h (columns h*hd .. (h+1)*hd, hd = dim / heads):
//     P_h = softmax(mask(Q_h K_h^T / sqrt(hd)))    row i attends to positions j <= i
//     C_h = P_h V_h
//   y = C (W_o + b_o if out_proj) (+ x if residual)
// With heads 1, no bias, no out_proj and residual this is exactly RustGPT's attention
// (torch_reference.py Block: a = x + softmax(mask(Q K^T / sqrt(d))) V), but with the
// correct backward, including the 1/sqrt(hd) factor on dQ and dK.
// Heads are column slices of Q, K, V addressed through gemm's lda/ldb/ldc strides:
// no per-head or transposed copies are made.
// Cached by forward: a reference to x, and Q, K, V, the attention probabilities
// (batch, heads, seq, seq) and, with out_proj, the context C.
// Accumulates: grads of w_q, w_k, w_v (dim, dim), b_q/b_k/b_v (dim) with bias, w_o (dim, dim)
// and b_o (dim) with out_proj (b_o only with bias). Returns dx.
// KV cache: forward_step(x, start) takes positions [start, start + n) of a batch,
// appends their K and V to a cache of max_seq_len positions and attends over
// [0, start + n) causally; one new token costs one position's projections plus one row of
// scores. reset_state() empties it. start must not exceed the number of cached positions
// (a smaller start overwrites from there on).
// Config: {type: SelfAttention, dim: D, heads: 1, bias: false, out_proj: false,
//          residual: true}; dim must equal the input's features, max_seq_len comes from the
//          model.
#pragma once

#include "framework/layer.hpp"
#include "framework/layer_config.hpp"

namespace strata {

template <class T>
class SelfAttention : public Layer<T> {
 public:
  static constexpr const char* kSummary =
      "causal multi-head self-attention (optional output projection, residual x + attn(x))";
  static constexpr const char* kExample =
      "{dim: 4, heads: 2, bias: true, out_proj: true}";  // for the conformance checks
  static Shape example_input() { return {2, 3, 4}; }
  static Schema schema();
  static std::unique_ptr<Layer<T>> from_config(const LayerConfig<T>& config);
  // `heads` from the config, checked to divide dim (and the model to have a max_seq_len
  // for the KV cache); shared with TransformerBlock.
  static std::int64_t checked_heads(const LayerConfig<T>& config, std::int64_t dim);
  // 3 dim^2 (+ dim^2 with out_proj) (+ dim per bias), from the config alone.
  static std::uint64_t parameter_count(const LayerConfig<T>& config);
  static std::uint64_t parameter_count(std::uint64_t dim, bool bias, bool out_proj);
  // Its output keeps the input's shape (the memory budget counts the layers after it).
  static Shape config_output_shape(const LayerConfig<T>& config) { return config.input_shape(); }

  SelfAttention(std::string name, std::size_t dim, std::size_t heads, bool bias, bool out_proj,
                bool residual, std::size_t max_seq_len, Rng& rng);

  std::string_view type() const override { return "SelfAttention"; }
  const Tensor<T>& forward(const Tensor<T>& x, Mode mode) override;
  const Tensor<T>& backward(const Tensor<T>& dy) override;
  std::vector<Parameter<T>*> parameters() override;
  Shape output_shape(const Shape& in) const override;

  void reset_state() override { cached_len_ = 0; }
  const Tensor<T>& forward_step(const Tensor<T>& x, std::size_t start) override;

  std::size_t dim() const { return dim_; }
  std::size_t heads() const { return heads_; }

 private:
  void check_input(const Tensor<T>& x) const;
  // out[rows x dim] = in[rows x dim] W (+ b)
  void project(const T* in, std::size_t rows, const Parameter<T>& w, const Parameter<T>* b,
               T* out) const;
  // Causal softmax of rows of scores (row r sits at absolute position first + r and
  // sees columns 0..first + r); entries beyond it are set to 0.
  static void causal_softmax(T* scores, std::size_t rows, std::size_t cols, std::size_t ld,
                             std::size_t first);
  // y = (ctx W_o + b_o or ctx) + (x if residual), given y pre-filled by the caller.
  void finish_output(const T* x, const T* ctx, std::size_t rows, T* y) const;
  // backward's steps, in the order it runs them (self_attention.cpp).
  const T* backward_output_projection(const Tensor<T>& dy,
                                      const typename Tensor<T>::shape_type& shape);
  void backward_head(std::size_t task, std::size_t seq, const T* d_ctx);
  static void causal_softmax_backward(const T* p, T* ds, std::size_t seq);
  void backward_projections(const T* x, std::size_t rows);

  std::size_t dim_, heads_, head_dim_, max_seq_len_;
  bool residual_;
  T scale_;
  Parameter<T> w_q_, w_k_, w_v_;
  std::unique_ptr<Parameter<T>> b_q_, b_k_, b_v_, w_o_, b_o_;

  // Training-path buffers (reused while shapes stay the same).
  CachedInput<T> input_;  // x itself, by reference (framework/layer.hpp)
  Tensor<T> q_, k_, v_, probs_, context_;
  Tensor<T> d_context_, d_scores_, d_q_, d_k_, d_v_;  // backward's own: released when it ends

  // Decoding-path buffers: the KV cache (batch, max_seq_len, dim) and per-step scratch.
  Tensor<T> k_cache_, v_cache_, step_q_, step_scores_, step_context_, step_output_;
  std::size_t cached_len_ = 0;
};

}  // namespace strata
