#include "tasks/generator.hpp"

#include <algorithm>
#include <cmath>

#include "framework/errors.hpp"

namespace strata {

void apply_repetition_penalty(float* logits, std::size_t vocab,
                              std::span<const std::int32_t> context, double penalty) {
  if (penalty == 1.0) return;
  // Each distinct token once: a token seen twice is penalised like one seen once.
  std::vector<bool> seen(vocab, false);
  for (const std::int32_t id : context) {
    if (id < 0 || std::size_t(id) >= vocab || seen[std::size_t(id)]) continue;
    seen[std::size_t(id)] = true;
    float& logit = logits[id];
    logit = logit > 0 ? float(double(logit) / penalty) : float(double(logit) * penalty);
  }
}

namespace {

std::int32_t sample_from(const float* logits, std::size_t vocab, const SamplingOptions& options,
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

}  // namespace

std::int32_t sample_token(const float* logits, std::size_t vocab, const SamplingOptions& options,
                          Rng& rng, std::vector<std::pair<float, std::int32_t>>& scratch,
                          std::span<const std::int32_t> context) {
  if (options.repetition_penalty == 1.0 || context.empty())
    return sample_from(logits, vocab, options, rng, scratch);
  // A copy: the logits belong to the model's output buffer.
  std::vector<float> penalised(logits, logits + vocab);
  apply_repetition_penalty(penalised.data(), vocab, context, options.repetition_penalty);
  return sample_from(penalised.data(), vocab, options, rng, scratch);
}

std::vector<std::int32_t> generate(Model<float>& model, const std::vector<std::int32_t>& prompt,
                                   std::int32_t eos_id, const SamplingOptions& options, Rng& rng,
                                   const TokenCallback& on_token) {
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
    const std::int32_t next = sample_token(last, vocab, options, rng, scratch, sequence);
    sequence.push_back(next);
    out.push_back(next);
    if (on_token) on_token(next);
    if (next == eos_id) break;
  }
  return out;
}

}  // namespace strata

namespace strata {

std::vector<std::int32_t> Conversation::context(const std::vector<std::int32_t>& question,
                                                std::size_t max_len, std::size_t answer_room,
                                                bool& dropped) {
  dropped = false;
  // A question too long for the model is generate()'s error: the turns stay for the next.
  if (question.size() >= max_len) return question;
  const std::size_t room = std::min(answer_room, max_len - question.size());
  while (!turns_.empty() && tokens_ + question.size() + room > max_len) {
    tokens_ -= turns_.front().size();
    turns_.pop_front();
    dropped = true;
  }
  std::vector<std::int32_t> ids;
  ids.reserve(tokens_ + question.size());
  for (const auto& turn : turns_) ids.insert(ids.end(), turn.begin(), turn.end());
  ids.insert(ids.end(), question.begin(), question.end());
  return ids;
}

void Conversation::add(const std::vector<std::int32_t>& question, std::vector<std::int32_t> answer,
                       std::int32_t eos_id) {
  if (answer.empty() || answer.back() != eos_id) answer.push_back(eos_id);
  std::vector<std::int32_t> turn = question;
  turn.insert(turn.end(), answer.begin(), answer.end());
  tokens_ += turn.size();
  turns_.push_back(std::move(turn));
}

namespace {

// Where the settled part of decoded text ends: before a trailing run of U+FFFD and
// before an incomplete UTF-8 character.
std::size_t settled_length(const std::string& text) {
  static const std::string replacement = "\xEF\xBF\xBD";
  std::size_t end = text.size();
  while (end >= 3 && text.compare(end - 3, 3, replacement) == 0) end -= 3;
  // A lead byte within the last 3 whose sequence runs past the end.
  for (std::size_t back = 1; back <= 3 && back <= end; ++back) {
    const auto byte = static_cast<unsigned char>(text[end - back]);
    if ((byte & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    const std::size_t length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1;
    if (length > back) end -= back;
    break;
  }
  return end;
}

}  // namespace

TextStream::TextStream(const Tokenizer& tokenizer, std::ostream& out)
    : tokenizer_(tokenizer), out_(out) {}

void TextStream::print_up_to(const std::string& text, std::size_t end) {
  // Text already printed cannot be taken back: only an extension of it is printed.
  if (end <= printed_.size() || text.compare(0, printed_.size(), printed_) != 0) return;
  out_ << std::string_view(text).substr(printed_.size(), end - printed_.size()) << std::flush;
  printed_.assign(text, 0, end);
}

void TextStream::push(std::int32_t id) {
  if (id == tokenizer_.eos_id()) return;
  ids_.push_back(id);
  const std::string text = tokenizer_.decode(ids_);
  print_up_to(text, settled_length(text));
}

std::string TextStream::finish() {
  std::string text = tokenizer_.decode(ids_);
  print_up_to(text, text.size());
  return text;
}

}  // namespace strata
