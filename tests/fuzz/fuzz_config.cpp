// libFuzzer harness for the config loader: the input is a run config's text, read as
// `strata check` and `strata train` read it: parse_run_config, build_model over a small
// vocabulary, make_optimizer, then one forward and backward pass of the built model
// on a few token ids.
//
// A strata::Error or ConfigError is a correct refusal. Anything else is a finding:
// another exception (uncaught: abort), a crash, a sanitizer report, a leak, a timeout
// or running out of memory (the memory budget is set low below, so an accepted model
// stays small: a finding there means the budget let something through).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "framework/errors.hpp"
#include "framework/model.hpp"
#include "optimizers/optimizer.hpp"
#include "training/run_config.hpp"

using namespace strata;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ::setenv("STRATA_MEMORY_BUDGET", "64M", 1);  // 4M parameters at most
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const RunConfig config = parse_run_config(text, "fuzz.yaml");
    Rng rng(config.seed);
    Model<float> model = build_model<float>(config.model, 11, rng);
    auto optimizer = make_optimizer<float>(config.optimizer);
    // Token ids (1, n) for an n the model accepts.
    const std::size_t n = std::size_t(std::min<std::int64_t>(model.max_seq_len, 4));
    Tensor<float> ids = Tensor<float>::from_shape({1, n});
    for (std::size_t i = 0; i < n; ++i) ids(0, i) = float((3 * i + 1) % 11);
    const Tensor<float>& y = model.forward(ids, Mode::train);
    Tensor<float> dy = xt::ones_like(y);
    model.backward(dy);
    optimizer->step(model.parameters(), 1e-3);
  } catch (const Error&) {
  } catch (const ConfigError&) {
  }
  return 0;
}
