// The contract checks every registered layer must pass, driven by its registration:
// the test suite (tests/conformance.cpp) runs them on every layer type, built-in or
// plugin, and `strata check-layer TYPE [--plugin LIB]` on one, for a layer's author.
//
// From the layer's example (LayerInfo::example, example_input; vocabulary 7 and
// max_seq_len 8 for layers that read them), in double precision:
//   - type() equals the registered name;
//   - output_shape() on the input with kAnyDim batch and sequence, and on the real one,
//     agrees with the shape forward returns; config_output_shape(), when declared,
//     agrees with output_shape() (the memory budget relies on it);
//   - input and parameter gradients against central differences, and backward twice =
//     twice the parameter gradient (grad_check.hpp), relative error <= tolerance;
//   - a run with every buffer released (as Model and Sequential release them, with a
//     threshold of 0, and the input overwritten when the layer says it does not keep it)
//     gives the same output, dx and parameter gradients, bit for bit, as one that keeps
//     everything.
#pragma once

#include <string>
#include <vector>

#include "framework/registry.hpp"

namespace strata {

struct ConformanceResult {
  std::vector<std::string> passed, failed;  // one line per check
  bool ok() const { return failed.empty(); }
  std::string report() const;  // "ok: ..." / "FAILED: ..." lines
};

ConformanceResult check_layer_conformance(const LayerInfo& info, double tolerance = 1e-6);

}  // namespace strata
