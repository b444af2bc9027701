// Text generation from a trained model: greedy, temperature, top-k and top-p sampling
// from the run's seeded Rng, stopping at </s> or the token budget.
//
// The repetition penalty (CTRL, Keskar et al. 2019; Hugging Face's
// `repetition_penalty`): before anything else, the logit of every token already in the
// context (prompt and generated so far) is divided by the penalty when positive and
// multiplied by it when negative, so a penalty above 1 makes every such token less
// likely whatever its sign. 1 leaves the logits as they are.
//
// With the KV cache (default) the prompt is run once and each new token then costs one
// position: attention layers keep the keys and values of earlier positions. Without it
// every step recomputes the whole sequence (the reference the cache is tested against).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "framework/model.hpp"
#include "framework/rng.hpp"
#include "text/tokenizer.hpp"

namespace strata {

struct SamplingOptions {
  std::size_t max_tokens = 80;      // new tokens at most (also bounded by max_seq_len)
  double temperature = 0;           // 0: greedy (argmax)
  std::size_t top_k = 0;            // 0: no top-k filter
  double top_p = 1.0;               // 1: no nucleus filter
  double repetition_penalty = 1.0;  // 1: off; > 1 discourages tokens already in the context
  bool use_cache = true;
};

// The penalty applied to `logits` (vocab entries) for the tokens in `context` (each
// distinct token once, however often it occurs; ids outside [0, vocab) are ignored).
void apply_repetition_penalty(float* logits, std::size_t vocab,
                              std::span<const std::int32_t> context, double penalty);

// Picks the next token from one row of logits, after the repetition penalty for the
// tokens of `context`. `scratch` is reused between calls.
std::int32_t sample_token(const float* logits, std::size_t vocab, const SamplingOptions& options,
                          Rng& rng, std::vector<std::pair<float, std::int32_t>>& scratch,
                          std::span<const std::int32_t> context = {});

// Called with each generated token as soon as it is chosen (for streaming output).
using TokenCallback = std::function<void(std::int32_t)>;

// Returns the generated ids (the prompt excluded), ending with eos_id if it was produced.
std::vector<std::int32_t> generate(Model<float>& model, const std::vector<std::int32_t>& prompt,
                                   std::int32_t eos_id, const SamplingOptions& options, Rng& rng,
                                   const TokenCallback& on_token = {});

// A chat's earlier turns, kept within the model's context window. Each turn is the ids
// of a question and its answer (ending with </s>, as every training example does).
// The context for a new question is the latest turns that fit beside it and the room
// its answer needs; older turns are dropped for good. The question itself is never
// dropped; one too long for the model comes back alone, the turns kept (generate()
// refuses it).
class Conversation {
 public:
  // The ids to generate from: kept turns, then `question`. `answer_room` positions are
  // kept free (fewer when the question alone leaves less). Sets `dropped` when turns
  // had to go.
  std::vector<std::int32_t> context(const std::vector<std::int32_t>& question, std::size_t max_len,
                                    std::size_t answer_room, bool& dropped);
  // Records a turn; `eos_id` is appended to an answer that lacks it.
  void add(const std::vector<std::int32_t>& question, std::vector<std::int32_t> answer,
           std::int32_t eos_id);
  void reset() { turns_.clear(); }
  std::size_t turns() const { return turns_.size(); }

 private:
  std::deque<std::vector<std::int32_t>> turns_;
  std::size_t tokens_ = 0;  // in turns_
};

// Prints the text of a growing sequence of generated ids as it grows, flushing after
// each token, for a tokenizer whose decoding of a longer sequence extends that of a
// shorter one. Text that may still change is held back until a later token settles
// it: an incomplete UTF-8 character or a trailing U+FFFD (what a byte-level decoder
// shows for a character whose bytes have not all arrived). </s> is not printed.
class TextStream {
 public:
  TextStream(const Tokenizer& tokenizer, std::ostream& out);
  void push(std::int32_t id);
  // Prints what was held back; returns the whole text (= decode of the ids pushed).
  std::string finish();

 private:
  void print_up_to(const std::string& text, std::size_t end);
  const Tokenizer& tokenizer_;
  std::ostream& out_;
  std::vector<std::int32_t> ids_;
  std::string printed_;
};

}  // namespace strata
