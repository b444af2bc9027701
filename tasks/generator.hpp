// Text generation from a trained model: greedy, temperature, top-k and top-p sampling
// from the run's seeded Rng, stopping at </s> or the token budget.
//
// With the KV cache (default) the prompt is run once and each new token then costs one
// position: attention layers keep the keys and values of earlier positions. Without it
// every step recomputes the whole sequence (the reference the cache is tested against).
#pragma once

#include <cstdint>
#include <vector>

#include "framework/model.hpp"
#include "framework/rng.hpp"

namespace strata {

struct SamplingOptions {
  std::size_t max_tokens = 80;  // new tokens at most (also bounded by max_seq_len)
  double temperature = 0;       // 0: greedy (argmax)
  std::size_t top_k = 0;        // 0: no top-k filter
  double top_p = 1.0;           // 1: no nucleus filter
  bool use_cache = true;
};

// Picks the next token from one row of logits. `scratch` is reused between calls.
std::int32_t sample_token(const float* logits, std::size_t vocab, const SamplingOptions& options,
                          Rng& rng, std::vector<std::pair<float, std::int32_t>>& scratch);

// Returns the generated ids (the prompt excluded), ending with eos_id if it was produced.
std::vector<std::int32_t> generate(Model<float>& model, const std::vector<std::int32_t>& prompt,
                                   std::int32_t eos_id, const SamplingOptions& options, Rng& rng);

}  // namespace strata
