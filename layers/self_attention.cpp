#include "layers/self_attention.hpp"

#include <algorithm>
#include <cmath>

#include "framework/blas.hpp"
#include "framework/init.hpp"
#include "framework/parallel.hpp"
#include "framework/simd_math.hpp"
#include "layers/linear.hpp"

namespace strata {

template <class T>
Schema SelfAttention<T>::schema() {
  return {
      integer_key("dim", kRequired, "model width; must equal the input's feature size", 1, 1 << 16),
      integer_key("heads", "1", "attention heads; dim must be divisible by it", 1, 1 << 12),
      boolean_key("bias", "false", "add learned biases b_q, b_k, b_v (and b_o)"),
      boolean_key("out_proj", "false", "apply an output projection W_o to the heads' context"),
      boolean_key("residual", "true", "return x + attention(x) instead of attention(x)"),
  };
}

template <class T>
std::uint64_t SelfAttention<T>::parameter_count(std::uint64_t dim, bool bias, bool out_proj) {
  const std::uint64_t projections = out_proj ? 4 : 3;
  return projections * dim * dim + (bias ? projections * dim : 0);
}

template <class T>
std::uint64_t SelfAttention<T>::parameter_count(const LayerConfig<T>& config) {
  return parameter_count(std::uint64_t(config.integer("dim")), config.boolean("bias"),
                         config.boolean("out_proj"));
}

template <class T>
std::int64_t SelfAttention<T>::checked_heads(const LayerConfig<T>& config, std::int64_t dim) {
  const std::int64_t heads = config.integer("heads");
  if (dim % heads != 0)
    config.fail("heads", "dim " + std::to_string(dim) + " is not divisible by heads " +
                             std::to_string(heads));
  if (config.model().max_seq_len <= 0)
    config.fail("type", "needs the model's max_seq_len (for the KV cache)");
  return heads;
}

template <class T>
std::unique_ptr<Layer<T>> SelfAttention<T>::from_config(const LayerConfig<T>& config) {
  const std::int64_t dim = config.matching_features("dim");
  const std::int64_t heads = SelfAttention<T>::checked_heads(config, dim);
  return std::make_unique<SelfAttention<T>>(config.name(), std::size_t(dim), std::size_t(heads),
                                            config.boolean("bias"), config.boolean("out_proj"),
                                            config.boolean("residual"),
                                            std::size_t(config.model().max_seq_len), config.rng());
}

template <class T>
SelfAttention<T>::SelfAttention(std::string name, std::size_t dim, std::size_t heads, bool bias,
                                bool out_proj, bool residual, std::size_t max_seq_len, Rng& rng)
    : Layer<T>(name),
      dim_(dim),
      heads_(heads),
      head_dim_(heads == 0 ? 0 : dim / heads),
      max_seq_len_(max_seq_len),
      residual_(residual),
      scale_(T(1) / std::sqrt(T(heads == 0 ? 1 : dim / heads))),
      w_q_(join_name(name, "w_q"), Tensor<T>::from_shape({dim, dim})),
      w_k_(join_name(name, "w_k"), Tensor<T>::from_shape({dim, dim})),
      w_v_(join_name(name, "w_v"), Tensor<T>::from_shape({dim, dim})) {
  if (dim == 0 || heads == 0 || dim % heads != 0)
    throw ShapeError(this->name() + ": dim " + std::to_string(dim) +
                     " must be a positive multiple of heads " + std::to_string(heads));
  // He init N(0, 2/dim), as RustGPT; drawn in the order q, k, v (then o).
  const double std = init_std(Init::he, dim, dim);
  fill_normal(w_q_.value, std, rng);
  fill_normal(w_k_.value, std, rng);
  fill_normal(w_v_.value, std, rng);
  auto zeros = [&](const char* local) {
    return std::make_unique<Parameter<T>>(join_name(name, local), xt::zeros<T>({dim}));
  };
  if (bias) {
    b_q_ = zeros("b_q");
    b_k_ = zeros("b_k");
    b_v_ = zeros("b_v");
  }
  if (out_proj) {
    w_o_ =
        std::make_unique<Parameter<T>>(join_name(name, "w_o"), Tensor<T>::from_shape({dim, dim}));
    fill_normal(w_o_->value, std, rng);
    if (bias) b_o_ = zeros("b_o");
  }
}

template <class T>
void SelfAttention<T>::check_input(const Tensor<T>& x) const {
  if (x.dimension() != 3 || x.shape()[2] != dim_)
    throw ShapeError(this->name() + ": expected input (batch, seq, " + std::to_string(dim_) + ")");
}

template <class T>
void SelfAttention<T>::project(const T* in, std::size_t rows, const Parameter<T>& w,
                               const Parameter<T>* b, T* out) const {
  if (b) {
    const T* bias = b->value.data();
    for (std::size_t r = 0; r < rows; ++r) std::copy(bias, bias + dim_, out + r * dim_);
  }
  gemm<T>(false, false, rows, dim_, dim_, T(1), in, w.value.data(), b ? T(1) : T(0), out);
}

template <class T>
void SelfAttention<T>::causal_softmax(T* scores, std::size_t rows, std::size_t cols, std::size_t ld,
                                      std::size_t first) {
  for (std::size_t r = 0; r < rows; ++r) {
    T* row = scores + r * ld;
    const std::size_t visible = std::min(cols, first + r + 1);
    // Subtracting the row maximum keeps exp() in range; masked entries are exactly 0.
    const T sum = exp_shifted_sum(row, row_max(row, visible), visible, row);
    const T inv = T(1) / sum;
    for (std::size_t j = 0; j < visible; ++j) row[j] *= inv;
    std::fill(row + visible, row + cols, T(0));
  }
}

// Prepares y before the attention products land in it, and tells the gemm that adds
// into y whether y already holds something (beta 1) or not (beta 0):
//  - with out_proj: y = (x if residual) + (b_o if present), then y += C W_o;
//  - without: y = x if residual, and the heads' P V products are written straight into y.
template <class T>
void SelfAttention<T>::finish_output(const T* x, const T* ctx, std::size_t rows, T* y) const {
  if (!w_o_) return;
  const bool filled = residual_ || b_o_;
  if (filled) {
    const T* b = b_o_ ? b_o_->value.data() : nullptr;
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < dim_; ++c)
        y[r * dim_ + c] = (residual_ ? x[r * dim_ + c] : T(0)) + (b ? b[c] : T(0));
  }
  gemm<T>(false, false, rows, dim_, dim_, T(1), ctx, w_o_->value.data(), filled ? T(1) : T(0), y);
}

template <class T>
const Tensor<T>& SelfAttention<T>::forward(const Tensor<T>& x, Mode) {
  check_input(x);
  const std::size_t batch = x.shape()[0], seq = x.shape()[1], rows = batch * seq;
  const std::size_t D = dim_, hd = head_dim_;
  input_.set(x);
  ensure_shape(q_, x.shape());
  ensure_shape(k_, x.shape());
  ensure_shape(v_, x.shape());
  ensure_shape(this->output_, x.shape());
  ensure_shape(probs_, std::vector<std::size_t>{batch, heads_, seq, seq});
  // The three projections are independent products (side by side on the pool).
  parallel_for(3, [&](std::size_t i) {
    if (i == 0) project(x.data(), rows, w_q_, b_q_.get(), q_.data());
    if (i == 1) project(x.data(), rows, w_k_, b_k_.get(), k_.data());
    if (i == 2) project(x.data(), rows, w_v_, b_v_.get(), v_.data());
  });

  // Without out_proj the heads write their context straight into the output.
  T* ctx = this->output_.data();
  T ctx_beta = T(0);
  if (w_o_) {
    ensure_shape(context_, x.shape());
    ctx = context_.data();
  } else if (residual_) {
    std::copy(x.begin(), x.end(), this->output_.begin());
    ctx_beta = T(1);
  }
  // Each (sequence, head) pair writes its own probabilities and context columns.
  parallel_for(batch * heads_, [&](std::size_t task) {
    const std::size_t b = task / heads_, h = task % heads_;
    const std::size_t off = b * seq * D + h * hd;
    T* p = probs_.data() + task * seq * seq;
    gemm<T>(false, true, seq, seq, hd, scale_, q_.data() + off, D, k_.data() + off, D, T(0), p,
            seq);
    causal_softmax(p, seq, seq, seq, 0);
    gemm<T>(false, false, seq, hd, seq, T(1), p, seq, v_.data() + off, D, ctx_beta, ctx + off, D);
  });
  finish_output(x.data(), ctx, rows, this->output_.data());
  return this->output_;
}

namespace {

// b.grad[c] += sum over rows of dz[r][c], in row order.
template <class T>
void add_column_sums(const T* dz, std::size_t rows, std::size_t cols, T* db) {
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) db[c] += dz[r * cols + c];
}

}  // namespace

template <class T>
const Tensor<T>& SelfAttention<T>::backward(const Tensor<T>& dy) {
  const Tensor<T>& input = input_.get(this->name());
  if (dy.size() != input.size() || input.dimension() != 3)
    throw ShapeError(this->name() + ": gradient shape mismatch");
  const std::size_t batch = input.shape()[0], seq = input.shape()[1];
  ensure_shape(this->input_grad_, input.shape());
  if (residual_)
    std::copy(dy.begin(), dy.end(), this->input_grad_.begin());
  else
    std::fill(this->input_grad_.begin(), this->input_grad_.end(), T(0));
  const T* d_ctx = backward_output_projection(dy, input.shape());
  ensure_shape(d_q_, input.shape());
  ensure_shape(d_k_, input.shape());
  ensure_shape(d_v_, input.shape());
  ensure_shape(d_scores_, std::vector<std::size_t>{batch * heads_, seq, seq});
  // Each (sequence, head) pair has its own dS and writes its own columns of dQ, dK, dV.
  parallel_for(batch * heads_, [&](std::size_t task) { backward_head(task, seq, d_ctx); });
  backward_projections(input.data(), batch * seq);
  for (Tensor<T>* scratch : {&d_context_, &d_scores_, &d_q_, &d_k_, &d_v_})
    release_if_large(*scratch);
  return this->input_grad_;
}

// With out_proj: W_o.grad += C^T dy, b_o.grad += sum dy, and dC = dy W_o^T (returned);
// without, dC is dy itself.
template <class T>
const T* SelfAttention<T>::backward_output_projection(const Tensor<T>& dy,
                                                      const typename Tensor<T>::shape_type& shape) {
  if (!w_o_) return dy.data();
  const std::size_t D = dim_, rows = dy.size() / D;
  gemm<T>(true, false, D, D, rows, T(1), context_.data(), dy.data(), T(1), w_o_->grad.data());
  if (b_o_) add_column_sums(dy.data(), rows, D, b_o_->grad.data());
  ensure_shape(d_context_, shape);
  gemm<T>(false, true, rows, D, D, T(1), dy.data(), w_o_->value.data(), T(0), d_context_.data());
  return d_context_.data();
}

// One (sequence, head) pair: dP || dV, the softmax backward, then dQ || dK.
template <class T>
void SelfAttention<T>::backward_head(std::size_t task, std::size_t seq, const T* d_ctx) {
  const std::size_t D = dim_, hd = head_dim_;
  const std::size_t b = task / heads_, h = task % heads_;
  const std::size_t off = b * seq * D + h * hd;
  const T* p = probs_.data() + task * seq * seq;
  T* ds = d_scores_.data() + task * seq * seq;
  // dP = dC V^T and dV = P^T dC.
  parallel_invoke(
      [&] {
        gemm<T>(false, true, seq, seq, hd, T(1), d_ctx + off, D, v_.data() + off, D, T(0), ds, seq);
      },
      [&] {
        gemm<T>(true, false, seq, hd, seq, T(1), p, seq, d_ctx + off, D, T(0), d_v_.data() + off,
                D);
      });
  causal_softmax_backward(p, ds, seq);
  // S = scale Q K^T, so dQ = scale dS K and dK = scale dS^T Q.
  parallel_invoke(
      [&] {
        gemm<T>(false, false, seq, hd, seq, scale_, ds, seq, k_.data() + off, D, T(0),
                d_q_.data() + off, D);
      },
      [&] {
        gemm<T>(true, false, seq, hd, seq, scale_, ds, seq, q_.data() + off, D, T(0),
                d_k_.data() + off, D);
      });
}

// Softmax backward per row, in place on dP: dS = P * (dP - sum(P * dP)); masked
// entries have P = 0.
template <class T>
void SelfAttention<T>::causal_softmax_backward(const T* p, T* ds, std::size_t seq) {
  for (std::size_t i = 0; i < seq; ++i) {
    const T* pr = p + i * seq;
    T* dr = ds + i * seq;
    T dot = 0;
    for (std::size_t j = 0; j <= i; ++j) dot += pr[j] * dr[j];
    for (std::size_t j = 0; j <= i; ++j) dr[j] = pr[j] * (dr[j] - dot);
    std::fill(dr + i + 1, dr + seq, T(0));
  }
}

// Back through the three projections: W.grad += x^T dZ, b.grad += sum dZ, dx += dZ W^T.
// The three dW are independent; the three dx products add into one buffer in a fixed
// order, so they stay one task (task 0, which the calling thread takes first).
template <class T>
void SelfAttention<T>::backward_projections(const T* x, std::size_t rows) {
  const std::size_t D = dim_;
  const struct {
    Parameter<T>* w;
    Parameter<T>* b;
    const T* dz;
  } projections[] = {{&w_q_, b_q_.get(), d_q_.data()},
                     {&w_k_, b_k_.get(), d_k_.data()},
                     {&w_v_, b_v_.get(), d_v_.data()}};
  parallel_for(4, [&](std::size_t task) {
    if (task == 0) {
      for (const auto& pr : projections)
        gemm<T>(false, true, rows, D, D, T(1), pr.dz, pr.w->value.data(), T(1),
                this->input_grad_.data());
      return;
    }
    const auto& pr = projections[task - 1];
    gemm<T>(true, false, D, D, rows, T(1), x, pr.dz, T(1), pr.w->grad.data());
    if (pr.b) add_column_sums(pr.dz, rows, D, pr.b->grad.data());
  });
}

template <class T>
const Tensor<T>& SelfAttention<T>::forward_step(const Tensor<T>& x, std::size_t start) {
  check_input(x);
  const std::size_t batch = x.shape()[0], n = x.shape()[1], rows = batch * n;
  const std::size_t D = dim_, hd = head_dim_, L = max_seq_len_, total = start + n;
  if (start > cached_len_)
    throw ShapeError(this->name() + ": forward_step at position " + std::to_string(start) +
                     " but only " + std::to_string(cached_len_) + " positions are cached");
  if (total > L)
    throw ShapeError(this->name() + ": positions up to " + std::to_string(total) +
                     " exceed max_seq_len " + std::to_string(L));
  if (start == 0) {
    ensure_shape(k_cache_, std::vector<std::size_t>{batch, L, D});
    ensure_shape(v_cache_, std::vector<std::size_t>{batch, L, D});
  } else if (k_cache_.shape()[0] != batch) {
    throw ShapeError(this->name() + ": batch size changed within one cached sequence");
  }

  // Only the new positions are projected; their K and V rows go straight into the cache.
  ensure_shape(step_q_, x.shape());
  project(x.data(), rows, w_q_, b_q_.get(), step_q_.data());
  for (std::size_t b = 0; b < batch; ++b) {
    const T* xb = x.data() + b * n * D;
    project(xb, n, w_k_, b_k_.get(), k_cache_.data() + (b * L + start) * D);
    project(xb, n, w_v_, b_v_.get(), v_cache_.data() + (b * L + start) * D);
  }

  ensure_shape(step_output_, x.shape());
  T* ctx = step_output_.data();
  T ctx_beta = T(0);
  if (w_o_) {
    ensure_shape(step_context_, x.shape());
    ctx = step_context_.data();
  } else if (residual_) {
    std::copy(x.begin(), x.end(), step_output_.begin());
    ctx_beta = T(1);
  }
  // Scores rows have stride L so the buffer keeps one shape as the sequence grows.
  ensure_shape(step_scores_, std::vector<std::size_t>{n, L});
  T* s = step_scores_.data();
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t h = 0; h < heads_; ++h) {
      const T* q = step_q_.data() + b * n * D + h * hd;
      const T* k = k_cache_.data() + b * L * D + h * hd;
      const T* v = v_cache_.data() + b * L * D + h * hd;
      gemm<T>(false, true, n, total, hd, scale_, q, D, k, D, T(0), s, L);
      causal_softmax(s, n, total, L, start);
      gemm<T>(false, false, n, hd, total, T(1), s, L, v, D, ctx_beta, ctx + b * n * D + h * hd, D);
    }
  finish_output(x.data(), ctx, rows, step_output_.data());
  cached_len_ = total;
  return step_output_;
}

template <class T>
std::vector<Parameter<T>*> SelfAttention<T>::parameters() {
  std::vector<Parameter<T>*> out{&w_q_, &w_k_, &w_v_};
  for (Parameter<T>* p : {b_q_.get(), b_k_.get(), b_v_.get(), w_o_.get(), b_o_.get()})
    if (p) out.push_back(p);
  return out;
}

template <class T>
Shape SelfAttention<T>::output_shape(const Shape& in) const {
  if (in.size() != 3 || (in.back() != kAnyDim && in.back() != std::int64_t(dim_)))
    throw ShapeError("SelfAttention expects input (batch, seq, " + std::to_string(dim_) +
                     "), got " + to_string(in));
  return in;
}

template class SelfAttention<float>;
template class SelfAttention<double>;

}  // namespace strata
