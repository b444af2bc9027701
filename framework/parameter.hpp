// A trainable tensor and its gradient. Layers own their Parameters as members, so a
// Parameter's address is stable for the layer's lifetime; optimizers and checkpoints
// refer to it by its hierarchical name ("blocks.1.attn.w_q").
#pragma once

#include <string>

#include "framework/tensor.hpp"

namespace strata {

template <class T>
struct Parameter {
  std::string name;
  Tensor<T> value;
  Tensor<T> grad;  // same shape as value; backward() adds into it

  Parameter(std::string full_name, Tensor<T> initial)
      : name(std::move(full_name)), value(std::move(initial)), grad(xt::zeros_like(value)) {}
  Parameter(const Parameter&) = delete;
  Parameter& operator=(const Parameter&) = delete;
};

// "blocks.1" + "w_q" -> "blocks.1.w_q"; an empty prefix gives the bare name.
inline std::string join_name(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

}  // namespace strata
