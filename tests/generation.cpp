// Generation: KV cache equals full recomputation, seeded sampling repeats, prompt errors.
#include <algorithm>
#include <boost/math/distributions/chi_squared.hpp>
#include <boost/test/unit_test.hpp>
#include <cmath>

#include "float_bounds.hpp"
#include "framework/errors.hpp"
#include "framework/model.hpp"
#include "tasks/generator.hpp"
#include "test_support.hpp"
#include "text/word_tokenizer.hpp"

using namespace strata;

namespace {

Model<float> random_model(const std::string& norm, int heads, std::uint64_t seed) {
  Rng rng(seed);
  const ConfigNode root =
      ConfigNode::parse(strata::testing::tiny_model_yaml(20, norm, heads), "t.yaml");
  return build_model<float>(root.get("model"), 20, rng);
}

// The distribution sample_token must draw from, from the definition: softmax(logits / T)
// over the top_k largest logits (all if 0), renormalised; then the nucleus: the fewest
// most probable of those whose mass reaches top_p (the token that crosses p included),
// renormalised. Ties are broken by id, as the sampler's order is.
std::vector<long double> sampling_distribution(const std::vector<float>& logits, double temperature,
                                               std::size_t top_k, double top_p) {
  std::vector<std::size_t> order(logits.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return logits[a] > logits[b]; });
  const std::size_t k = top_k > 0 ? std::min(top_k, order.size()) : order.size();
  std::vector<long double> p(logits.size(), 0.0L);
  long double total = 0;
  for (std::size_t i = 0; i < k; ++i)
    total += p[order[i]] =
        std::exp((long double)(logits[order[i]] - logits[order[0]]) / temperature);
  long double mass = 0;
  std::size_t nucleus = 0;
  while (nucleus < k && mass < (long double)top_p * total) mass += p[order[nucleus++]];
  for (std::size_t i = nucleus; i < k; ++i) p[order[i]] = 0;
  for (auto& q : p) q /= mass;
  return p;
}

// Draws `n` tokens with a fixed seed; returns the chi-square statistic against `want`
// over its support, and requires no draw outside it.
double chi_square_of_draws(const std::vector<float>& logits, const SamplingOptions& options,
                           const std::vector<long double>& want, std::size_t n,
                           std::size_t* support, const std::vector<std::int32_t>& context = {}) {
  Rng rng(2024);
  std::vector<std::pair<float, std::int32_t>> scratch;
  std::vector<std::size_t> count(logits.size(), 0);
  for (std::size_t i = 0; i < n; ++i)
    ++count[std::size_t(
        sample_token(logits.data(), logits.size(), options, rng, scratch, context))];
  double chi2 = 0;
  *support = 0;
  for (std::size_t v = 0; v < logits.size(); ++v) {
    if (want[v] == 0) {
      BOOST_TEST(count[v] == 0u, "token " << v << " is outside the distribution's support");
      continue;
    }
    ++*support;
    const double expected = double(want[v]) * double(n);
    chi2 += (double(count[v]) - expected) * (double(count[v]) - expected) / expected;
  }
  return chi2;
}

// A byte-level tokenizer as SentencePiece's byte fallback decodes: each id is one byte
// (ids 3..258 = bytes 0..255); an incomplete UTF-8 character at the end decodes to
// U+FFFD until its last byte arrives. Ids 0..2 are pad, unk and eos.
class ByteTokenizer final : public Tokenizer {
 public:
  std::string type() const override { return "bytes"; }
  Encoded encode(std::string_view text) const override {
    Encoded e;
    for (const char c : text) e.ids.push_back(3 + static_cast<unsigned char>(c));
    return e;
  }
  std::string decode(const std::vector<std::int32_t>& ids) const override {
    std::string bytes;
    for (const std::int32_t id : ids) bytes += char(id - 3);
    // The last lead byte whose character is not complete becomes U+FFFD.
    for (std::size_t back = 1; back <= 3 && back <= bytes.size(); ++back) {
      const auto b = static_cast<unsigned char>(bytes[bytes.size() - back]);
      if ((b & 0xC0) == 0x80) continue;
      const std::size_t length = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
      if (length > back) bytes.replace(bytes.size() - back, back, "\xEF\xBF\xBD");
      break;
    }
    return bytes;
  }
  std::size_t size() const override { return 259; }
  std::int32_t pad_id() const override { return 0; }
  std::int32_t unk_id() const override { return 1; }
  std::int32_t eos_id() const override { return 2; }
  TokenizerFiles files() const override { return {}; }
};

// Records what was written and how often it was flushed.
struct CountingBuffer : std::stringbuf {
  int flushes = 0;
  int sync() override {
    ++flushes;
    return std::stringbuf::sync();
  }
};

std::vector<std::int32_t> ids(std::initializer_list<int> list) {
  return std::vector<std::int32_t>(list.begin(), list.end());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(generation)

BOOST_AUTO_TEST_CASE(kv_cache_equals_full_recompute_token_for_token) {
  for (const std::string norm : {"post", "pre"}) {
    for (int heads : {1, 2}) {
      Model<float> model = random_model(norm, heads, 3);
      const std::vector<std::int32_t> prompt = {4, 9, 1};
      for (double temperature : {0.0, 1.0}) {
        SamplingOptions options;
        options.max_tokens = 12;
        options.temperature = temperature;
        Rng a(5), b(5);
        options.use_cache = true;
        const auto cached = generate(model, prompt, -1, options, a);
        options.use_cache = false;
        const auto full = generate(model, prompt, -1, options, b);
        BOOST_TEST(cached.size() == 12u);
        BOOST_TEST(cached == full, norm << " heads=" << heads << " T=" << temperature);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(cached_logits_match_full_forward) {
  Model<float> model = random_model("pre", 2, 9);
  Tensor<float> ids = Tensor<float>::from_shape({1, 6});
  const float values[] = {3, 1, 4, 1, 5, 9};
  std::copy(values, values + 6, ids.begin());
  const Tensor<float> full = model.forward(ids, Mode::eval);
  model.reset_state();
  // One position against six: other GEMM shapes, so another summation order. The bound
  // is tests/float_bounds.hpp's, relative to the row's largest |logit| (tiny_model_yaml:
  // 2 blocks, dim 8, 2 heads, hidden 16).
  const std::size_t path = testing::transformer_path_length(2, 8, 2, 16, 6);
  double worst = 0;  // the largest error as a fraction of its bound
  for (std::size_t t = 0; t < 6; ++t) {
    Tensor<float> one = Tensor<float>::from_shape({1, 1});
    one(0, 0) = ids(0, t);
    const Tensor<float>& step = model.forward_step(one, t);
    const double bound =
        testing::reordering_bound<float>(path, testing::row_magnitude(&full(0, t, 0), 20));
    for (std::size_t v = 0; v < 20; ++v) {
      const double error = std::abs(double(step(0, 0, v)) - double(full(0, t, v)));
      worst = std::max(worst, error / bound);
      BOOST_TEST(error <= bound, "t " << t << " v " << v << ": " << step(0, 0, v) << " vs "
                                      << full(0, t, v) << ", bound " << bound);
    }
  }
  BOOST_TEST_MESSAGE("cached vs full logits: worst error " << worst << " of the bound");
}

BOOST_AUTO_TEST_CASE(seeded_sampling_repeats_and_seeds_differ) {
  Model<float> model = random_model("post", 2, 4);
  SamplingOptions options;
  options.max_tokens = 12;
  options.temperature = 1.5;
  options.top_k = 10;
  options.top_p = 0.95;
  Rng a(1), b(1), c(2);
  const auto first = generate(model, {1, 2}, -1, options, a);
  const auto again = generate(model, {1, 2}, -1, options, b);
  const auto other = generate(model, {1, 2}, -1, options, c);
  BOOST_TEST(first == again);
  BOOST_TEST(first != other);
}

// Temperature, top-k and top-p against the definition (sampling_distribution above):
// 200000 seeded draws per setting, Pearson's chi-square over the support against its
// 1 - 1e-6 quantile (deterministic with the fixed seed; a correct sampler would exceed
// it once in a million seeds). The settings put the nucleus boundary well inside a
// token's mass, so that dropping the token that crosses p, or keeping the next one,
// moves whole tokens in or out.
BOOST_AUTO_TEST_CASE(sampled_distribution_matches_the_definition) {
  const std::vector<float> logits = {2.0f, 1.0f, 0.5f, 0.0f, -1.0f, 0.3f, -0.5f, 1.5f};
  struct Setting {
    double temperature;
    std::size_t top_k;
    double top_p;
  };
  const Setting settings[] = {{1.0, 0, 1.0}, {0.7, 0, 1.0},  {2.5, 0, 1.0}, {1.0, 4, 1.0},
                              {1.0, 0, 0.8}, {0.8, 6, 0.75}, {1.5, 5, 0.5}};
  const std::size_t n = 200000;
  for (const Setting& s : settings) {
    SamplingOptions options;
    options.temperature = s.temperature;
    options.top_k = s.top_k;
    options.top_p = s.top_p;
    const auto want = sampling_distribution(logits, s.temperature, s.top_k, s.top_p);
    std::size_t support = 0;
    const double chi2 = chi_square_of_draws(logits, options, want, n, &support);
    const boost::math::chi_squared_distribution<double> dist(double(support - 1));
    const double critical = boost::math::quantile(boost::math::complement(dist, 1e-6));
    BOOST_TEST_MESSAGE("T " << s.temperature << " top_k " << s.top_k << " top_p " << s.top_p << ": "
                            << support << " tokens, chi-square " << chi2 << " (critical "
                            << critical << ")");
    BOOST_TEST(support >= 2u);  // a real distribution, not a greedy pick
    BOOST_TEST(chi2 < critical, "T " << s.temperature << " top_k " << s.top_k << " top_p "
                                     << s.top_p << ": chi-square " << chi2);
  }
}

// The nucleus keeps the token whose probability carries the mass past p: with
// probabilities (0.5, 0.3, 0.2) (logits log p) and top_p 0.6, the first token alone
// (0.5) does not reach 0.6, so the second is kept too, and only the third is dropped.
BOOST_AUTO_TEST_CASE(nucleus_keeps_the_token_crossing_p) {
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  SamplingOptions options;
  options.temperature = 1.0;
  options.top_p = 0.6;
  Rng rng(3);
  std::vector<std::pair<float, std::int32_t>> scratch;
  std::size_t count[3] = {0, 0, 0};
  for (int i = 0; i < 20000; ++i) ++count[sample_token(logits.data(), 3, options, rng, scratch)];
  BOOST_TEST(count[2] == 0u);
  // 0.5 / 0.8 = 0.625 of the draws; binomial sd over 20000 draws is 0.0034.
  BOOST_TEST(std::abs(double(count[0]) / 20000 - 0.625) < 0.02);
  BOOST_TEST(std::abs(double(count[1]) / 20000 - 0.375) < 0.02);
}

BOOST_AUTO_TEST_CASE(top_k_one_and_tiny_top_p_are_greedy) {
  Model<float> model = random_model("post", 1, 6);
  SamplingOptions greedy;
  greedy.max_tokens = 10;
  SamplingOptions k1 = greedy, p0 = greedy;
  k1.temperature = p0.temperature = 1.0;
  k1.top_k = 1;
  p0.top_p = 1e-9;
  Rng r1(1), r2(2), r3(3);
  const auto g = generate(model, {2, 3}, -1, greedy, r1);
  BOOST_TEST(generate(model, {2, 3}, -1, k1, r2) == g);
  BOOST_TEST(generate(model, {2, 3}, -1, p0, r3) == g);
}

BOOST_AUTO_TEST_CASE(stops_at_eos_and_at_max_length) {
  Model<float> model = random_model("post", 1, 6);
  SamplingOptions options;
  options.max_tokens = 100;
  Rng rng(0);
  const auto free_run = generate(model, {2, 3}, -1, options, rng);
  BOOST_TEST(free_run.size() == 14u);  // max_seq_len 16 - 2 prompt tokens
  const std::int32_t eos = free_run[3];
  const auto stopped = generate(model, {2, 3}, eos, options, rng);
  BOOST_TEST(stopped.back() == eos);
  BOOST_TEST(stopped.size() <= 4u);
}

BOOST_AUTO_TEST_CASE(empty_and_overlong_prompts_are_errors) {
  Model<float> model = random_model("post", 1, 6);
  Rng rng(0);
  BOOST_CHECK_THROW(generate(model, {}, -1, SamplingOptions{}, rng), Error);
  BOOST_CHECK_THROW(generate(model, std::vector<std::int32_t>(16, 1), -1, SamplingOptions{}, rng),
                    Error);
}

// CTRL's rule: a positive logit of a token in the context is divided by the penalty, a
// negative one multiplied (both move it down); tokens not in the context, repeats in the
// context and ids outside the vocabulary change nothing. Penalties 2 and 4 are powers of
// two: the results are exact in float.
BOOST_AUTO_TEST_CASE(repetition_penalty_divides_positive_and_multiplies_negative_logits) {
  std::vector<float> logits = {2.0f, -1.0f, 0.5f, -3.0f, 0.0f, 6.0f};
  const std::vector<std::int32_t> context = {0, 1, 1, 1, 4, 5, -1, 99};
  apply_repetition_penalty(logits.data(), logits.size(), context, 2.0);
  const std::vector<float> want = {1.0f, -2.0f, 0.5f, -3.0f, 0.0f, 3.0f};
  BOOST_TEST(logits == want, boost::test_tools::per_element());
  apply_repetition_penalty(logits.data(), logits.size(), context, 1.0);
  BOOST_TEST(logits == want, boost::test_tools::per_element());
  apply_repetition_penalty(logits.data(), logits.size(), std::vector<std::int32_t>{5}, 4.0);
  BOOST_TEST(logits[5] == 0.75f);
}

// Greedy picks after the penalty: a positive leader halved falls behind the runner-up;
// a negative leader doubled falls behind (dividing it would have kept it first).
BOOST_AUTO_TEST_CASE(greedy_choice_follows_the_penalised_logits) {
  SamplingOptions options;
  options.repetition_penalty = 2.0;
  Rng rng(0);
  std::vector<std::pair<float, std::int32_t>> scratch;
  const std::vector<float> positive = {3.0f, 2.0f, -1.0f};
  const std::vector<float> negative = {-1.0f, -1.5f, -4.0f};
  const std::vector<std::int32_t> first = {0};
  BOOST_TEST(sample_token(positive.data(), 3, options, rng, scratch) == 0);
  BOOST_TEST(sample_token(positive.data(), 3, options, rng, scratch, first) == 1);
  BOOST_TEST(sample_token(negative.data(), 3, options, rng, scratch, first) == 1);
  options.repetition_penalty = 1.0;
  BOOST_TEST(sample_token(positive.data(), 3, options, rng, scratch, first) == 0);
  BOOST_TEST(positive[0] == 3.0f);  // the caller's logits are left as they were
}

// With temperature, top-k and top-p the draws follow the definition applied to the
// penalised logits (the same chi-square test as above).
BOOST_AUTO_TEST_CASE(sampling_draws_from_the_penalised_distribution) {
  const std::vector<float> logits = {2.0f, 1.0f, 0.5f, 0.0f, -1.0f, 0.3f, -0.5f, 1.5f};
  const std::vector<std::int32_t> context = {0, 7, 4, 0};
  std::vector<float> penalised = logits;
  apply_repetition_penalty(penalised.data(), penalised.size(), context, 1.8);
  SamplingOptions options;
  options.temperature = 0.9;
  options.top_k = 6;
  options.top_p = 0.9;
  options.repetition_penalty = 1.8;
  const auto want = sampling_distribution(penalised, 0.9, 6, 0.9);
  BOOST_TEST(want != sampling_distribution(logits, 0.9, 6, 0.9));  // the penalty matters here
  std::size_t support = 0;
  const double chi2 = chi_square_of_draws(logits, options, want, 200000, &support, context);
  const boost::math::chi_squared_distribution<double> dist(double(support - 1));
  BOOST_TEST(chi2 < boost::math::quantile(boost::math::complement(dist, 1e-6)));
}

// generate() penalises every token of the sequence so far, prompt included: the same as
// a reference loop that runs the whole sequence, penalises a copy of the last row's
// logits and takes the argmax. Every token reaches the callback, in order.
BOOST_AUTO_TEST_CASE(generate_penalises_the_whole_context_and_streams_each_token) {
  Model<float> model = random_model("pre", 2, 8);
  SamplingOptions options;
  options.max_tokens = 12;
  options.use_cache = false;  // the reference below recomputes too: identical arithmetic
  options.repetition_penalty = 10.0;
  const std::vector<std::int32_t> prompt = {3, 7, 3};
  std::vector<std::int32_t> streamed;
  Rng rng(0);
  const auto got =
      generate(model, prompt, -1, options, rng, [&](std::int32_t id) { streamed.push_back(id); });
  BOOST_TEST(streamed == got);

  std::vector<std::int32_t> sequence = prompt, want;
  while (want.size() < options.max_tokens) {
    Tensor<float> input = Tensor<float>::from_shape({1, sequence.size()});
    std::copy(sequence.begin(), sequence.end(), input.begin());
    const Tensor<float>& logits = model.forward(input, Mode::eval);
    const std::size_t vocab = logits.shape().back();
    std::vector<float> last(logits.data() + (logits.size() - vocab), logits.data() + logits.size());
    apply_repetition_penalty(last.data(), vocab, sequence, 10.0);
    const auto next = std::int32_t(std::max_element(last.begin(), last.end()) - last.begin());
    sequence.push_back(next);
    want.push_back(next);
  }
  BOOST_TEST(got == want);
  options.repetition_penalty = 1.0;
  BOOST_TEST(generate(model, prompt, -1, options, rng) != got);  // the penalty changed the text
}

// The latest turns that fit beside the question and the answer's room, in order; the
// oldest dropped for good; the question never; `dropped` says when it happened.
BOOST_AUTO_TEST_CASE(conversation_keeps_the_latest_turns_within_the_context) {
  Conversation c;
  bool dropped = true;
  BOOST_TEST(c.context(ids({7, 8}), 12, 3, dropped) == ids({7, 8}));
  BOOST_TEST(!dropped);
  c.add(ids({7, 8}), ids({9, 2}), 2);  // an answer ending with </s> (id 2): kept as it is
  c.add(ids({7, 5}), ids({6}), 2);     // one cut short gets its </s>
  BOOST_TEST(c.turns() == 2u);
  // 4 + 4 + 2 + 2 room = 12: everything fits.
  BOOST_TEST(c.context(ids({7, 4}), 12, 2, dropped) == ids({7, 8, 9, 2, 7, 5, 6, 2, 7, 4}));
  BOOST_TEST(!dropped);
  // 3 positions of room: 13 > 12, the oldest turn goes, and stays gone.
  BOOST_TEST(c.context(ids({7, 4}), 12, 3, dropped) == ids({7, 5, 6, 2, 7, 4}));
  BOOST_TEST(dropped);
  BOOST_TEST(c.turns() == 1u);
  BOOST_TEST(c.context(ids({7, 4}), 12, 2, dropped) == ids({7, 5, 6, 2, 7, 4}));
  BOOST_TEST(!dropped);
  // A question that leaves less room than asked for keeps what room it leaves.
  BOOST_TEST(c.context(ids({1, 1, 1, 1, 1, 1, 1, 1, 1, 1}), 12, 5, dropped) ==
             ids({1, 1, 1, 1, 1, 1, 1, 1, 1, 1}));
  BOOST_TEST(dropped);
  BOOST_TEST(c.turns() == 0u);
  // One too long for the model is passed on alone (generate() refuses it), and costs
  // the conversation nothing.
  c.add(ids({7}), ids({2}), 2);
  BOOST_TEST(c.context(std::vector<std::int32_t>(12, 1), 12, 5, dropped).size() == 12u);
  BOOST_TEST(!dropped);
  BOOST_TEST(c.turns() == 1u);
  BOOST_TEST(c.context(ids({3}), 12, 2, dropped) == ids({7, 2, 3}));
  c.reset();
  BOOST_TEST(c.turns() == 0u);
  BOOST_TEST(c.context(ids({3}), 12, 2, dropped) == ids({3}));
  BOOST_TEST(!dropped);
}

// Word tokens: each token's text is printed, and flushed, as soon as it is pushed
// (joined punctuation included); </s> is not printed; the whole is decode()'s text.
BOOST_AUTO_TEST_CASE(text_stream_prints_and_flushes_every_token) {
  const WordTokenizer words = WordTokenizer::build({"it is 8,849 meters , isn't it ? </s>"});
  const std::vector<std::int32_t> sequence = words.encode("it is 8,849 meters, isn't it?").ids;
  CountingBuffer buffer;
  std::ostream out(&buffer);
  TextStream stream(words, out);
  std::vector<std::int32_t> so_far;
  for (const std::int32_t id : sequence) {
    stream.push(id);
    so_far.push_back(id);
    BOOST_TEST(buffer.str() == words.decode(so_far));
    BOOST_TEST(buffer.flushes == int(so_far.size()));
  }
  stream.push(words.eos_id());
  BOOST_TEST(stream.finish() == words.decode(sequence));
  BOOST_TEST(buffer.str() == "it is 8,849 meters, isn't it?");
}

// Bytes of a character split across tokens: nothing of it is printed (no U+FFFD, no
// partial character) until its last byte arrives; ASCII goes out at once.
BOOST_AUTO_TEST_CASE(text_stream_holds_back_incomplete_characters) {
  const ByteTokenizer bytes;
  const std::string text =
      "a\xC3\xA9"
      "b\xF0\x9F\x98\x80!";  // a, e-acute, b, an emoji, !
  const std::vector<std::int32_t> sequence = bytes.encode(text).ids;
  const std::vector<std::string> after_each = {"a",
                                               "a",
                                               "a\xC3\xA9",
                                               "a\xC3\xA9"
                                               "b",
                                               "a\xC3\xA9"
                                               "b",
                                               "a\xC3\xA9"
                                               "b",
                                               "a\xC3\xA9"
                                               "b",
                                               text.substr(0, 8),
                                               text};
  BOOST_REQUIRE(sequence.size() == after_each.size());
  std::ostringstream out;
  TextStream stream(bytes, out);
  for (std::size_t i = 0; i < sequence.size(); ++i) {
    stream.push(sequence[i]);
    BOOST_TEST(out.str() == after_each[i], "after token " << i);
  }
  BOOST_TEST(stream.finish() == text);
  BOOST_TEST(out.str() == text);
  // A character never completed is printed as the decoder shows it, at the end.
  std::ostringstream cut;
  TextStream unfinished(bytes, cut);
  for (const std::int32_t id : bytes.encode("ok\xE2\x82").ids) unfinished.push(id);
  BOOST_TEST(cut.str() == "ok");
  unfinished.finish();
  BOOST_TEST(cut.str() == "ok\xEF\xBF\xBD");
}

BOOST_AUTO_TEST_SUITE_END()
