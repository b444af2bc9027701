#include "layers/linear.hpp"

#include <cmath>

#include "framework/blas.hpp"
#include "framework/parallel.hpp"

namespace strata {

template <class T>
Schema Linear<T>::schema() {
  return {
      integer_key("out", kRequired, "output features", 1, 1 << 16),
      boolean_key("bias", "true", "add a learned bias"),
      string_key("init", "he", "weights ~ he: N(0, 2/in), xavier: N(0, 2/(in+out)), or zeros",
                 init_names()),
  };
}

template <class T>
std::uint64_t Linear<T>::parameter_count(const LayerConfig<T>& config) {
  const auto in = std::uint64_t(config.input_features("out"));
  const auto out = std::uint64_t(config.integer("out"));
  return in * out + (config.boolean("bias") ? out : 0);
}

template <class T>
Shape Linear<T>::config_output_shape(const LayerConfig<T>& config) {
  Shape out = config.input_shape();
  config.input_features("out");  // fails on an input without a known feature size
  out.back() = config.integer("out");
  return out;
}

template <class T>
std::unique_ptr<Layer<T>> Linear<T>::from_config(const LayerConfig<T>& config) {
  return std::make_unique<Linear<T>>(config.name(), config.input_features("out"),
                                     config.integer("out"), config.boolean("bias"),
                                     parse_init(config.string("init")), config.rng());
}

template <class T>
Linear<T>::Linear(std::string name, std::size_t in, std::size_t out, bool bias, Init init, Rng& rng)
    : Layer<T>(name),
      in_(in),
      out_(out),
      weight_(join_name(name, "weight"), Tensor<T>::from_shape({in, out})) {
  fill_init(weight_.value, init, in, out, rng);
  if (bias) bias_ = std::make_unique<Parameter<T>>(join_name(name, "bias"), xt::zeros<T>({out}));
}

template <class T>
void affine_forward(const T* x, std::size_t rows, std::size_t in, std::size_t out,
                    const Parameter<T>& w, bool transposed, const Parameter<T>* b, T* y) {
  if (b) {
    const T* bias = b->value.data();
    for (std::size_t r = 0; r < rows; ++r) std::copy(bias, bias + out, y + r * out);
  }
  gemm<T>(false, transposed, rows, out, in, T(1), x, in, w.value.data(), transposed ? in : out,
          b ? T(1) : T(0), y, out);
}

template <class T>
void affine_backward(const T* x, const T* dy, std::size_t rows, std::size_t in, std::size_t out,
                     Parameter<T>& w, bool transposed, Parameter<T>* b, T* dx) {
  parallel_invoke(
      [&] {
        if (transposed)  // dW (out, in) += dy^T x
          gemm<T>(true, false, out, in, rows, T(1), dy, x, T(1), w.grad.data());
        else  // dW (in, out) += x^T dy
          gemm<T>(true, false, in, out, rows, T(1), x, dy, T(1), w.grad.data());
        if (b) {
          T* db = b->grad.data();
          for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t o = 0; o < out; ++o) db[o] += dy[r * out + o];
        }
      },
      [&] {  // dx = dy W^T (W stored (in, out)) or dy W (stored (out, in))
        gemm<T>(false, !transposed, rows, in, out, T(1), dy, out, w.value.data(),
                transposed ? in : out, T(0), dx, in);
      });
}

template <class T>
const Tensor<T>& Linear<T>::forward(const Tensor<T>& x, Mode) {
  if (x.dimension() == 0 || x.shape().back() != in_)
    throw ShapeError(this->name() + ": expected input (..., " + std::to_string(in_) + ")");
  input_.set(x);
  auto out_shape = x.shape();
  out_shape.back() = out_;
  ensure_shape(this->output_, out_shape);
  affine_forward(x.data(), leading_rows(x), in_, out_, weight_, false, bias_.get(),
                 this->output_.data());
  return this->output_;
}

template <class T>
const Tensor<T>& Linear<T>::backward(const Tensor<T>& dy) {
  const Tensor<T>& input = input_.get(this->name());
  const std::size_t rows = leading_rows(input);
  if (dy.size() != rows * out_) throw ShapeError(this->name() + ": gradient shape mismatch");
  ensure_shape(this->input_grad_, input.shape());
  affine_backward(input.data(), dy.data(), rows, in_, out_, weight_, false, bias_.get(),
                  this->input_grad_.data());
  return this->input_grad_;
}

template <class T>
std::vector<Parameter<T>*> Linear<T>::parameters() {
  if (bias_) return {&weight_, bias_.get()};
  return {&weight_};
}

template <class T>
Shape Linear<T>::output_shape(const Shape& in) const {
  if (in.empty() || (in.back() != kAnyDim && in.back() != std::int64_t(in_)))
    throw ShapeError("Linear expects input (..., " + std::to_string(in_) + "), got " +
                     to_string(in));
  Shape out = in;
  out.back() = std::int64_t(out_);
  return out;
}

template class Linear<float>;
template class Linear<double>;
template void affine_forward<float>(const float*, std::size_t, std::size_t, std::size_t,
                                    const Parameter<float>&, bool, const Parameter<float>*, float*);
template void affine_forward<double>(const double*, std::size_t, std::size_t, std::size_t,
                                     const Parameter<double>&, bool, const Parameter<double>*,
                                     double*);
template void affine_backward<float>(const float*, const float*, std::size_t, std::size_t,
                                     std::size_t, Parameter<float>&, bool, Parameter<float>*,
                                     float*);
template void affine_backward<double>(const double*, const double*, std::size_t, std::size_t,
                                      std::size_t, Parameter<double>&, bool, Parameter<double>*,
                                      double*);

}  // namespace strata
