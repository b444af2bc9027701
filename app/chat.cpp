#include "app/chat.hpp"

#include <unistd.h>

#include <iostream>

#include "framework/errors.hpp"
#include "framework/parallel.hpp"
#include "framework/text.hpp"
#include "tasks/run.hpp"

namespace strata {

std::vector<std::int32_t> encode_prompt(const LanguageModel& lm, const std::string& prompt) {
  std::vector<std::string> unknown;
  std::vector<std::int32_t> ids = lm.encode(prompt, &unknown);
  if (ids.empty()) throw Error("the prompt is empty: give at least one word");
  if (unknown.size() == ids.size())
    throw Error("none of the prompt's words are in the model's vocabulary: " + join(unknown, ", "));
  if (!unknown.empty())
    std::cerr << "note: not in the vocabulary, read as <unk>: " << join(unknown, ", ") << "\n";
  return ids;
}

SamplingOptions sampling_from(const GenerationConfig& g) {
  SamplingOptions s;
  s.max_tokens = std::size_t(g.max_tokens);
  s.temperature = g.temperature;
  s.top_k = std::size_t(g.top_k);
  s.top_p = g.top_p;
  return s;
}

std::string answer(LanguageModel& lm, const std::string& prompt, const SamplingOptions& options,
                   Rng& rng) {
  const auto ids = encode_prompt(lm, prompt);
  auto out = generate(lm.model, ids, lm.tokenizer->eos_id(), options, rng);
  if (!out.empty() && out.back() == lm.tokenizer->eos_id()) out.pop_back();  // shown as the end
  return lm.tokenizer->decode(out);
}

LanguageModel load_model(const std::string& dir, int threads) {
  const Checkpoint checkpoint = load_checkpoint(dir);
  if (is_classification(parse_run_config(checkpoint.config_text, dir + "/checkpoint/config.yaml")))
    throw Error(dir +
                ": a classification run: generate and chat need a language model "
                "(strata evaluate " +
                dir + " reports the classifier's accuracy)");
  LanguageModel lm = LanguageModel::restore(checkpoint, dir);
  if (threads > 0) lm.config.threads = threads;
  return lm;
}

namespace {

SamplingOptions sampling_from(const LanguageModel& lm, const GenerateArgs& args, Rng& rng) {
  SamplingOptions s = sampling_from(lm.config.generation);
  if (args.max_tokens >= 0) s.max_tokens = std::size_t(args.max_tokens);
  if (args.temperature >= 0) s.temperature = args.temperature;
  if (args.top_k >= 0) s.top_k = std::size_t(args.top_k);
  if (args.top_p >= 0) s.top_p = args.top_p;
  if (args.repetition_penalty >= 0) s.repetition_penalty = args.repetition_penalty;
  s.use_cache = !args.no_cache;
  rng = Rng(args.seed >= 0 ? std::uint64_t(args.seed) : lm.config.generation.seed);
  return s;
}

// Generates from `prompt` ids, printing the answer as it comes; returns its ids.
std::vector<std::int32_t> stream_answer(LanguageModel& lm, const std::vector<std::int32_t>& prompt,
                                        const SamplingOptions& options, Rng& rng) {
  TextStream stream(*lm.tokenizer, std::cout);
  auto ids = generate(lm.model, prompt, lm.tokenizer->eos_id(), options, rng,
                      [&](std::int32_t id) { stream.push(id); });
  stream.finish();
  std::cout << "\n" << std::flush;
  return ids;
}

// A chat line as the instruction data reads: `User: <line>`.
std::string as_user_turn(const std::string& line) {
  const std::size_t start = line.find_first_not_of(" \t");
  if (line.compare(start, 5, "User:") == 0) return line.substr(start);
  return "User: " + line;
}

}  // namespace

int command_generate(const GenerateArgs& args) {
  LanguageModel lm = load_model(args.dir, args.threads);
  const ThreadingScope threading(lm.config.threads);
  Rng rng;
  const SamplingOptions options = sampling_from(lm, args, rng);
  stream_answer(lm, encode_prompt(lm, args.prompt), options, rng);
  return 0;
}

namespace {

// One chat line answered after the conversation so far, which it then joins.
void chat_turn(LanguageModel& lm, Conversation& conversation, const std::string& line,
               const SamplingOptions& options, Rng& rng, bool& told_dropping) {
  const std::vector<std::int32_t> question = encode_prompt(lm, as_user_turn(line));
  const std::size_t max_len = std::size_t(lm.model.max_seq_len);
  bool dropped = false;
  const auto context = conversation.context(question, max_len, options.max_tokens, dropped);
  if (dropped && !told_dropping) {
    std::cout << std::flush;
    std::cerr << "note: the conversation no longer fits the model's context of " << max_len
              << " tokens: its oldest turns are dropped (said once; /reset starts a new one)\n";
    told_dropping = true;
  }
  conversation.add(question, stream_answer(lm, context, options, rng), lm.tokenizer->eos_id());
}

}  // namespace

int command_chat(const GenerateArgs& args) {
  LanguageModel lm = load_model(args.dir, args.threads);
  const ThreadingScope threading(lm.config.threads);
  Rng rng;
  const SamplingOptions options = sampling_from(lm, args, rng);
  const bool interactive = ::isatty(STDIN_FILENO);
  if (interactive)
    std::cout << "Strata chat. Type a question; `/reset` starts a new conversation, `exit` "
                 "quits.\n";
  Conversation conversation;
  bool told_dropping = false;
  std::string line;
  std::size_t lines = 0, failed = 0;
  // Every line gets an answer or, in parentheses, why not; stops when stdout fails.
  while (std::cout) {
    if (interactive) std::cout << "> " << std::flush;
    if (!std::getline(std::cin, line)) break;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
      line.pop_back();
    if (line == "exit") break;
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    if (line.substr(line.find_first_not_of(" \t")) == "/reset") {
      conversation.reset();
      told_dropping = false;
      std::cout << "(new conversation)\n" << std::flush;
      continue;
    }
    ++lines;
    try {
      chat_turn(lm, conversation, line, options, rng, told_dropping);
    } catch (const Error& e) {
      ++failed;
      std::cout << "(" << e.what() << ")\n" << std::flush;
    }
  }
  if (failed)
    throw Error("chat: " + std::to_string(failed) + " of " + std::to_string(lines) +
                " lines could not be answered");
  return 0;
}

}  // namespace strata
