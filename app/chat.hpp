// `strata generate` and `strata chat`: text from a trained language model.
//
// The prompt convention is RustGPT's instruction data (data/chat.json): each example
// is `User: <question> Assistant: <answer> </s>`, so an instruction-tuned model answers
// a prompt `User: <question>` by continuing it with `Assistant: ...`.
//   - generate continues its --prompt exactly as given (a model pre-trained on plain
//     text has no such convention): ask an instruction-tuned model with
//     --prompt "User: <question>".
//   - chat sends each line as `User: <line>` (a line that already starts with `User:`
//     is sent as it is), after the conversation so far.
// So `chat` answering its first line Q prints what `generate --prompt "User: Q"` prints
// with the same options and seed. Both stream the answer as it is generated, both stop
// at </s> (not shown) or the token budget.
//
// chat keeps its earlier turns (question, answer, </s>) in front of each new question,
// as many of the latest as fit the model's context (max_seq_len) with --max-tokens
// positions left for the answer; it drops the oldest when they no longer fit, and says
// so once. `/reset` starts a new conversation, `exit` (or end of input) quits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tasks/generator.hpp"
#include "tasks/language_model.hpp"

namespace strata {

struct GenerateArgs {
  std::string dir, prompt;
  std::int64_t max_tokens = -1, top_k = -1, seed = -1;
  double temperature = -1, top_p = -1, repetition_penalty = -1;  // < 0: the run's / off
  int threads = 0;                                               // 0: the run's
  bool no_cache = false;
};

// The ids of `prompt`; an empty prompt or one with no known word is an error, unknown
// words are noted on stderr.
std::vector<std::int32_t> encode_prompt(const LanguageModel& lm, const std::string& prompt);

// The run's `generation:` settings as sampling options.
SamplingOptions sampling_from(const GenerationConfig& g);

// The text generate() continues `prompt` with, </s> left out.
std::string answer(LanguageModel& lm, const std::string& prompt, const SamplingOptions& options,
                   Rng& rng);

// The run's language model; a classification run is an error that points to evaluate.
LanguageModel load_model(const std::string& dir, int threads);

int command_generate(const GenerateArgs& args);
int command_chat(const GenerateArgs& args);

}  // namespace strata
