#include "layers/embedding.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>

#include "framework/init.hpp"

namespace strata {

template <class T>
Schema Embedding<T>::schema() {
  return {
      integer_key("dim", kRequired, "embedding size", 1, 1 << 16),
      number_key("init_std", "0.02", "both tables ~ N(0, init_std)", 0),
  };
}

template <class T>
std::uint64_t Embedding<T>::parameter_count(const LayerConfig<T>& config) {
  const ModelContext& model = config.model();
  const auto dim = std::uint64_t(config.integer("dim"));
  return std::uint64_t(std::max<std::int64_t>(model.vocab_size, 0)) * dim +
         std::uint64_t(std::max<std::int64_t>(model.max_seq_len, 0)) * dim;
}

template <class T>
Shape Embedding<T>::config_output_shape(const LayerConfig<T>& config) {
  const Shape& in = config.input_shape();
  if (in.size() != 2)
    throw ShapeError("Embedding expects token ids (batch, seq), got " + to_string(in));
  return {in[0], in[1], config.integer("dim")};
}

template <class T>
std::unique_ptr<Layer<T>> Embedding<T>::from_config(const LayerConfig<T>& config) {
  const ModelContext& model = config.model();
  if (model.vocab_size <= 0)
    config.fail("dim",
                "Embedding needs the vocabulary size (from the tokenizer or `vocab_size:`), "
                "got " +
                    std::to_string(model.vocab_size));
  if (model.max_seq_len <= 0)
    config.fail("dim", "Embedding needs `model.max_seq_len` >= 1 for its positional table, got " +
                           std::to_string(model.max_seq_len));
  return std::make_unique<Embedding<T>>(
      config.name(), std::size_t(model.vocab_size), std::size_t(config.integer("dim")),
      std::size_t(model.max_seq_len), config.number("init_std"), config.rng());
}

template <class T>
Embedding<T>::Embedding(std::string name, std::size_t vocab, std::size_t dim,
                        std::size_t max_seq_len, double init_std, Rng& rng)
    : Layer<T>(name, Retains{false, false}),
      vocab_(vocab),
      dim_(dim),
      max_seq_len_(max_seq_len),
      token_(join_name(name, "token"), Tensor<T>::from_shape({vocab, dim})),
      position_(join_name(name, "position"), Tensor<T>::from_shape({max_seq_len, dim})) {
  if (vocab == 0 || dim == 0 || max_seq_len == 0)
    throw Error(this->name() + ": Embedding needs vocab, dim and max_seq_len >= 1");
  fill_normal(token_.value, init_std, rng);
  fill_normal(position_.value, init_std, rng);
}

template <class T>
const Tensor<T>& Embedding<T>::forward(const Tensor<T>& x, Mode) {
  return embed(x, 0);
}

template <class T>
const Tensor<T>& Embedding<T>::forward_step(const Tensor<T>& x, std::size_t start) {
  return embed(x, start);
}

template <class T>
const Tensor<T>& Embedding<T>::embed(const Tensor<T>& x, std::size_t start) {
  if (x.dimension() != 2)
    throw ShapeError(this->name() + ": expected token ids (batch, seq), got rank " +
                     std::to_string(x.dimension()));
  const std::size_t batch = x.shape()[0], seq = x.shape()[1];
  if (start + seq > max_seq_len_)
    throw Error(this->name() + ": positions [" + std::to_string(start) + ", " +
                std::to_string(start + seq) + ") exceed max_seq_len " +
                std::to_string(max_seq_len_) + " (sequence length " + std::to_string(seq) +
                (start ? ", starting at " + std::to_string(start) : std::string()) + ")");
  // Validate every id before touching any state, so a bad batch leaves the cache intact.
  const T* in = x.data();
  for (std::size_t i = 0; i < batch * seq; ++i) {
    const T v = in[i];
    const bool integer = std::trunc(v) == v;  // false for NaN; +-inf fail the range test
    if (!integer || !(v >= T(0) && v < T(vocab_))) {
      std::ostringstream id;
      id << std::setprecision(std::numeric_limits<T>::max_digits10) << v;
      throw Error(this->name() + ": token id " + id.str() + " at (" + std::to_string(i / seq) +
                  ", " + std::to_string(i % seq) + ") " +
                  (integer ? "is outside the vocabulary [0, " + std::to_string(vocab_) + ")"
                           : std::string("is not an integer")));
    }
  }
  ids_.resize(batch * seq);  // no reallocation once the largest batch was seen
  for (std::size_t i = 0; i < batch * seq; ++i) ids_[i] = std::size_t(in[i]);
  batch_ = batch, seq_ = seq, start_ = start;

  ensure_shape(this->output_, std::array<std::size_t, 3>{batch, seq, dim_});
  const T* tok = token_.value.data();
  const T* pos = position_.value.data();
  T* y = this->output_.data();
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t s = 0; s < seq; ++s) {
      const T* t = tok + ids_[b * seq + s] * dim_;
      const T* p = pos + (start + s) * dim_;
      T* yr = y + (b * seq + s) * dim_;
      for (std::size_t d = 0; d < dim_; ++d) yr[d] = t[d] + p[d];
    }
  return this->output_;
}

template <class T>
const Tensor<T>& Embedding<T>::backward(const Tensor<T>& dy) {
  if (dy.size() != batch_ * seq_ * dim_)
    throw ShapeError(this->name() + ": gradient shape mismatch");
  T* dtok = token_.grad.data();
  T* dpos = position_.grad.data();
  const T* g = dy.data();
  for (std::size_t b = 0; b < batch_; ++b)
    for (std::size_t s = 0; s < seq_; ++s) {
      const T* gr = g + (b * seq_ + s) * dim_;
      T* t = dtok + ids_[b * seq_ + s] * dim_;
      T* p = dpos + (start_ + s) * dim_;
      for (std::size_t d = 0; d < dim_; ++d) {
        t[d] += gr[d];
        p[d] += gr[d];
      }
    }
  ensure_shape(this->input_grad_, std::array<std::size_t, 2>{batch_, seq_});
  std::fill(this->input_grad_.begin(), this->input_grad_.end(), T(0));
  return this->input_grad_;
}

template <class T>
std::vector<Parameter<T>*> Embedding<T>::parameters() {
  return {&token_, &position_};
}

template <class T>
Shape Embedding<T>::output_shape(const Shape& in) const {
  if (in.size() != 2)
    throw ShapeError("Embedding expects token ids (batch, seq), got " + to_string(in));
  if (in[1] != kAnyDim && in[1] > std::int64_t(max_seq_len_))
    throw ShapeError("Embedding: sequence length " + std::to_string(in[1]) +
                     " exceeds max_seq_len " + std::to_string(max_seq_len_));
  return {in[0], in[1], std::int64_t(dim_)};
}

template class Embedding<float>;
template class Embedding<double>;

}  // namespace strata
