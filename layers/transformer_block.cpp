#include "layers/transformer_block.hpp"

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
  };
}

template <class T>
std::uint64_t TransformerBlock<T>::parameter_count(const LayerConfig<T>& config) {
  const auto dim = std::uint64_t(config.integer("dim"));
  return SelfAttention<T>::parameter_count(dim, config.boolean("bias"),
                                           config.boolean("out_proj")) +
         FeedForward<T>::parameter_count(dim, std::uint64_t(config.integer("hidden"))) +
         4 * dim;  // ln1 and ln2: gamma and beta each
}

template <class T>
std::unique_ptr<Layer<T>> TransformerBlock<T>::from_config(const LayerConfig<T>& config) {
  const std::int64_t dim = config.matching_features("dim");
  const std::int64_t heads = SelfAttention<T>::checked_heads(config, dim);
  Options o;
  o.dim = std::size_t(dim);
  o.hidden = std::size_t(config.integer("hidden"));
  o.heads = std::size_t(heads);
  o.norm = config.string("norm") == "pre" ? NormPlacement::pre : NormPlacement::post;
  o.activation = parse_activation(config.string("activation"));
  o.bias = config.boolean("bias");
  o.out_proj = config.boolean("out_proj");
  o.eps = config.number("eps");
  o.max_seq_len = std::size_t(config.model().max_seq_len);
  return std::make_unique<TransformerBlock<T>>(config.name(), o, config.rng());
}

template <class T>
TransformerBlock<T>::TransformerBlock(std::string name, const Options& options, Rng& rng)
    : Layer<T>(name), options_(options) {
  // Post-norm: the sublayers add their own residuals. Pre-norm: the residual skips the
  // LayerNorm too, so it is added here instead.
  const bool inner_residual = options.norm == NormPlacement::post;
  attn_ = std::make_unique<SelfAttention<T>>(join_name(name, "attn"), options.dim, options.heads,
                                             options.bias, options.out_proj, inner_residual,
                                             options.max_seq_len, rng);
  ln1_ = std::make_unique<LayerNorm<T>>(join_name(name, "ln1"), options.dim, options.eps);
  ffn_ = std::make_unique<FeedForward<T>>(join_name(name, "ffn"), options.dim, options.hidden,
                                          options.activation, inner_residual, rng);
  ln2_ = std::make_unique<LayerNorm<T>>(join_name(name, "ln2"), options.dim, options.eps);
}

template <class T>
const Tensor<T>& TransformerBlock<T>::forward(const Tensor<T>& x, Mode mode) {
  if (options_.norm == NormPlacement::post)
    return forward_chain(std::array<Layer<T>*, 4>{attn_.get(), ln1_.get(), ffn_.get(), ln2_.get()},
                         x, mode);
  // Each branch's output is dead once added to its residual; a_ once ln2 and the second
  // residual have read it (ln2 keeps its own x-hat, the residual needs nothing).
  add_into(a_, x, forward_chain(std::array<Layer<T>*, 2>{ln1_.get(), attn_.get()}, x, mode));
  attn_->release_output();
  add_into(output_, a_, forward_chain(std::array<Layer<T>*, 2>{ln2_.get(), ffn_.get()}, a_, mode));
  ffn_->release_output();
  release_if_large(a_);
  return output_;
}

template <class T>
const Tensor<T>& TransformerBlock<T>::forward_cached(const Tensor<T>& x, std::size_t start) {
  // Decoding works on a few positions at a time: nothing here is large enough to release.
  auto call = [start](Layer<T>& layer, const Tensor<T>& in) -> const Tensor<T>& {
    return layer.forward_cached(in, start);
  };
  if (options_.norm == NormPlacement::post)
    return call(*ln2_, call(*ffn_, call(*ln1_, call(*attn_, x))));
  add_into(a_, x, call(*attn_, call(*ln1_, x)));
  add_into(output_, a_, call(*ffn_, call(*ln2_, a_)));
  return output_;
}

template <class T>
const Tensor<T>& TransformerBlock<T>::backward(const Tensor<T>& dy) {
  if (options_.norm == NormPlacement::post)
    return backward_chain(std::array<Layer<T>*, 4>{attn_.get(), ln1_.get(), ffn_.get(), ln2_.get()},
                          dy);
  // out = a + ffn(ln2(a)): da = dy + ln2'(ffn'(dy)); a = x + attn(ln1(x)): dx = da + ...
  add_into(d_a_, dy, backward_chain(std::array<Layer<T>*, 2>{ln2_.get(), ffn_.get()}, dy));
  ln2_->release_input_grad();
  add_into(input_grad_, d_a_,
           backward_chain(std::array<Layer<T>*, 2>{ln1_.get(), attn_.get()}, d_a_));
  ln1_->release_input_grad();
  release_if_large(d_a_);
  return input_grad_;
}

template <class T>
bool TransformerBlock<T>::keeps_input() const {
  // Post-norm: the attention keeps x for dW_q/k/v. Pre-norm: x goes into ln1 (which
  // keeps its own x-hat) and into the residual, which backward does not need.
  return options_.norm == NormPlacement::post ? attn_->keeps_input() : ln1_->keeps_input();
}

template <class T>
void TransformerBlock<T>::release_output() {
  if (options_.norm == NormPlacement::post)
    ln2_->release_output();
  else
    release_if_large(output_);
}

template <class T>
void TransformerBlock<T>::release_input_grad() {
  if (options_.norm == NormPlacement::post)
    attn_->release_input_grad();
  else
    release_if_large(input_grad_);
}

template <class T>
std::vector<Parameter<T>*> TransformerBlock<T>::parameters() {
  std::vector<Parameter<T>*> out;
  for (Layer<T>* layer :
       std::initializer_list<Layer<T>*>{attn_.get(), ln1_.get(), ffn_.get(), ln2_.get()})
    for (Parameter<T>* p : layer->parameters()) out.push_back(p);
  return out;
}

template <class T>
Shape TransformerBlock<T>::output_shape(const Shape& in) const {
  if (in.size() != 3 || (in.back() != kAnyDim && in.back() != std::int64_t(options_.dim)))
    throw ShapeError("TransformerBlock expects input (batch, seq, " + std::to_string(options_.dim) +
                     "), got " + to_string(in));
  return in;
}

template <class T>
void TransformerBlock<T>::reset_cache() {
  attn_->reset_cache();
  ln1_->reset_cache();
  ffn_->reset_cache();
  ln2_->reset_cache();
}

template class TransformerBlock<float>;
template class TransformerBlock<double>;

}  // namespace strata
