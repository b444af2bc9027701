#include "tasks/generator.hpp"

#include <algorithm>
#include <cmath>

#include "framework/errors.hpp"

namespace strata {

std::int32_t sample_token(const float* logits, std::size_t vocab, const SamplingOptions& options,
                          Rng& rng, std::vector<std::pair<float, std::int32_t>>& scratch) {
  if (options.temperature <= 0)
    return static_cast<std::int32_t>(std::max_element(logits, logits + vocab) - logits);
  scratch.resize(vocab);
  for (std::size_t v = 0; v < vocab; ++v) scratch[v] = {logits[v], std::int32_t(v)};
  // Candidates in decreasing probability; ties keep id order so the result is stable.
  std::size_t keep = options.top_k > 0 ? std::min(options.top_k, vocab) : vocab;
  auto by_logit = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  std::partial_sort(scratch.begin(), scratch.begin() + keep, scratch.end(), by_logit);
  const double max = scratch[0].first;
  std::vector<double> weights(keep);
  double total = 0;
  for (std::size_t i = 0; i < keep; ++i)
    total += weights[i] = std::exp((scratch[i].first - max) / options.temperature);
  if (options.top_p < 1.0) {
    double mass = 0;
    std::size_t nucleus = 0;
    while (nucleus < keep && mass < options.top_p * total) mass += weights[nucleus++];
    keep = std::max<std::size_t>(nucleus, 1);
    total = 0;
    for (std::size_t i = 0; i < keep; ++i) total += weights[i];
  }
  double r = rng.uniform() * total;
  for (std::size_t i = 0; i < keep; ++i) {
    r -= weights[i];
    if (r < 0) return scratch[i].second;
  }
  return scratch[keep - 1].second;
}

std::vector<std::int32_t> generate(Model<float>& model, const std::vector<std::int32_t>& prompt,
                                   std::int32_t eos_id, const SamplingOptions& options, Rng& rng) {
  if (prompt.empty()) throw Error("the prompt is empty: give at least one known word");
  const std::size_t max_len = static_cast<std::size_t>(model.max_seq_len);
  if (prompt.size() >= max_len)
    throw Error("the prompt has " + std::to_string(prompt.size()) +
                " tokens; the model's maximum sequence length is " + std::to_string(max_len) +
                " (at least one position must remain for the answer)");
  std::vector<std::int32_t> sequence = prompt, out;
  std::vector<std::pair<float, std::int32_t>> scratch;
  Tensor<float> input;
  auto run = [&](std::size_t from) -> const Tensor<float>& {
    ensure_shape(input, std::vector<std::size_t>{1, sequence.size() - from});
    std::copy(sequence.begin() + long(from), sequence.end(), input.begin());
    return options.use_cache ? model.forward_step(input, from) : model.forward(input, Mode::eval);
  };
  if (options.use_cache) model.reset_state();
  std::size_t cached = 0;
  while (out.size() < options.max_tokens && sequence.size() < max_len) {
    const Tensor<float>& logits = run(options.use_cache ? cached : 0);
    cached = sequence.size();
    const std::size_t vocab = logits.shape().back();
    const float* last = logits.data() + (logits.size() - vocab);
    const std::int32_t next = sample_token(last, vocab, options, rng, scratch);
    sequence.push_back(next);
    out.push_back(next);
    if (next == eos_id) break;
  }
  return out;
}

}  // namespace strata
