// The SentencePiece tokenizer: exact round trips (non-ASCII, emoji, whitespace runs),
// no unknown input, deterministic training, the vocabulary size, loading a model file
// and a checkpoint's copy, and the errors for bad keys and bad model files.
#include <sentencepiece_trainer.h>

#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

#include "framework/errors.hpp"
#include "framework/rng.hpp"
#include "test_support.hpp"
#include "text/sentencepiece_tokenizer.hpp"
#include "training/checkpoint.hpp"
#include "training/run_config.hpp"

using namespace strata;

// Exported by libsentencepiece, not declared in its headers (as in the tokenizer).
namespace sentencepiece::logging {
void SetMinLogLevel(int level);
}  // namespace sentencepiece::logging

namespace {

using strata::testing::error_of;
using strata::testing::TempDir;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Sentences drawn from a small word list (some with accents), one per line.
std::vector<std::string> corpus(std::size_t lines, std::uint64_t seed = 7) {
  const std::vector<std::string> words = {
      "the",      "cat",  "sat",         "on",           "a",    "mat",   "and",   "dog",
      "ran",      "fast", "caf\xC3\xA9", "na\xC3\xAFve", "over", "hills", "river", "quietly",
      "tomorrow", "it's", "8,849",       "metres",       "high", "snow",  "falls", "in",
      "winter"};
  Rng rng(seed);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < lines; ++i) {
    std::string line;
    const std::size_t n = 4 + rng.below(8);
    for (std::size_t w = 0; w < n; ++w) line += (w ? " " : "") + words[rng.below(words.size())];
    out.push_back(line + ".");
  }
  return out;
}

ConfigNode tokenizer_node(const std::string& keys) {
  return parse_run_config(
             "model: {layers: []}\noptimizer: {type: Adam}\ntokenizer: {type: "
             "sentencepiece" +
                 keys + "}\n",
             "run.yaml")
      .tokenizer;
}

std::unique_ptr<Tokenizer> trained(const std::string& keys = ", vocab_size: 300",
                                   const std::vector<std::string>& texts = corpus(400)) {
  return make_tokenizer(tokenizer_node(keys), texts);
}

const std::vector<std::string>& awkward_texts() {
  static const std::vector<std::string> texts = {
      "Hello,  world!\n\n   three spaces\tand\ttabs\r\n",
      "caf\xC3\xA9 na\xC3\xAFve \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E "
      "\xF0\x9F\x98\x80\xF0\x9F\x8E\x89",
      "  leading and trailing  ",
      "don't 8,849 m </s> after the end</s>",
      "\n",
      "",
      "zzzz qqqq xylophone \xE2\x82\xAC 100",
  };
  return texts;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(sentencepiece)

BOOST_AUTO_TEST_CASE(bpe_and_unigram_decode_back_to_the_exact_text) {
  for (const std::string type : {"bpe", "unigram"}) {
    const auto t = trained(", model_type: " + type + ", vocab_size: 300");
    BOOST_TEST(t->type() == "sentencepiece");
    for (const std::string& text : awkward_texts()) {
      const Encoded e = t->encode(text);
      BOOST_TEST(t->decode(e.ids) == text, type << ": " << text);
      // Byte fallback: nothing is unknown, even characters the data never had.
      BOOST_TEST(e.unknown.empty());
      for (const std::int32_t id : e.ids) BOOST_TEST(id != t->unk_id());
    }
  }
}

BOOST_AUTO_TEST_CASE(the_end_of_sequence_text_is_the_eos_id) {
  const auto t = trained();
  BOOST_TEST(t->pad_id() == 0);
  BOOST_TEST(t->unk_id() == 1);
  BOOST_TEST(t->eos_id() == 2);
  const std::vector<std::int32_t> ids = t->encode("the cat </s>").ids;
  BOOST_TEST(ids.back() == t->eos_id());
  BOOST_TEST(t->decode({t->pad_id()}).empty());
  BOOST_TEST(
      contains(error_of([&] { t->decode({std::int32_t(t->size())}); }), "outside the vocabulary"));
}

BOOST_AUTO_TEST_CASE(training_is_deterministic_and_follows_the_keys) {
  const auto a = trained(", vocab_size: 320");
  const auto b = trained(", vocab_size: 320");
  BOOST_TEST(a->files() == b->files());
  BOOST_TEST(a->size() == 320u);
  const auto c = trained(", vocab_size: 330");
  BOOST_TEST(c->size() == 330u);
  BOOST_TEST(a->files() != c->files());
  // Subwords: common words become single pieces, so text takes fewer ids than bytes.
  const std::string line = corpus(1, 99).front();
  BOOST_TEST(trained(", vocab_size: 400")->encode(line).ids.size() < line.size() / 3);
}

BOOST_AUTO_TEST_CASE(a_small_corpus_gets_the_vocabulary_it_has) {
  const auto t = trained(", vocab_size: 5000", {"ab ab ab", "ba"});
  BOOST_TEST(t->size() < 5000u);
  BOOST_TEST(t->size() >= 259u);  // specials and bytes at least
  BOOST_TEST(t->decode(t->encode("abba \xF0\x9F\x98\x80").ids) == "abba \xF0\x9F\x98\x80");
}

BOOST_AUTO_TEST_CASE(a_single_megabyte_line_trains_and_round_trips) {
  std::string line;
  for (const std::string& s : corpus(20000)) line += s + " ";
  line.resize(std::size_t(1) << 20);
  while ((static_cast<unsigned char>(line.back()) & 0xC0) == 0x80) line.pop_back();
  line.pop_back();  // no split character at the end
  const auto t = trained(", vocab_size: 400", {line});
  BOOST_TEST(t->size() == 400u);
  BOOST_TEST(t->decode(t->encode(line).ids) == line);
}

BOOST_AUTO_TEST_CASE(a_model_file_and_a_checkpoint_copy_load_the_same_tokenizer) {
  TempDir dir;
  const auto t = trained();
  const std::string model = t->files().at(SentencePieceTokenizer::kFile);
  const std::string path = dir.write("m.model", model);
  const auto loaded =
      make_tokenizer(tokenizer_node(", model: " + path), std::vector<std::string>{});
  const auto restored = load_tokenizer("sentencepiece", t->files(), dir.path.string());
  for (const std::string& text : awkward_texts()) {
    BOOST_TEST(loaded->encode(text).ids == t->encode(text).ids);
    BOOST_TEST(restored->encode(text).ids == t->encode(text).ids);
  }
  BOOST_TEST(loaded->files() == t->files());

  // Through a checkpoint on disk: the manifest names the type, the model is a file.
  Checkpoint c;
  c.config_text = "seed: 1\n";
  c.tokenizer_type = t->type();
  c.tokenizer_files = t->files();
  save_checkpoint(dir.file("run"), c);
  const Checkpoint back = load_checkpoint(dir.file("run"));
  const auto again = load_tokenizer(back.tokenizer_type, back.tokenizer_files, "run/checkpoint");
  BOOST_TEST(again->encode(awkward_texts()[1]).ids == t->encode(awkward_texts()[1]).ids);
}

BOOST_AUTO_TEST_CASE(bad_keys_are_reported_at_their_place) {
  auto error = [](const std::string& keys, const std::vector<std::string>& texts = corpus(50)) {
    return error_of([&] { make_tokenizer(tokenizer_node(keys), texts); });
  };
  const std::string small = error(", vocab_size: 10");
  BOOST_TEST(small ==
                 "run.yaml:3:46: tokenizer (sentencepiece): \"vocab_size\" must be in [260, "
                 "1048576], got 10",
             small);
  const std::string kind = error(", model_type: wordpiece");
  BOOST_TEST(
      kind.starts_with("run.yaml:3:46: tokenizer (sentencepiece): \"model_type\" must be one "
                       "of bpe, unigram, got \"wordpiece\""),
      kind);
  const std::string both = error(", model: x.model, vocab_size: 300");
  BOOST_TEST(both.starts_with("run.yaml:3:62: tokenizer (sentencepiece): \"vocab_size\" trains a "
                              "model, and \"model\" loads one: give one or the other"),
             both);
  const std::string empty = error("", {});
  BOOST_TEST(contains(empty, "no text to train the SentencePiece model on"), empty);
}

BOOST_AUTO_TEST_CASE(bad_model_files_are_refused_with_the_reason) {
  TempDir dir;
  auto error = [&](const std::string& path) {
    return error_of([&] { make_tokenizer(tokenizer_node(", model: " + path), corpus(1)); });
  };
  const std::string missing = error(dir.file("none.model"));
  BOOST_TEST(missing.starts_with("run.yaml:3:41: tokenizer (sentencepiece): " +
                                 dir.file("none.model") + ": no such file"),
             missing);
  const std::string junk = error(dir.write("junk.model", "not a model at all"));
  BOOST_TEST(contains(junk, "junk.model: not a SentencePiece model"), junk);

  // A model SentencePiece's defaults would make: no byte fallback, normalised text.
  std::vector<std::string> lines = corpus(300);
  struct Lines : sentencepiece::SentenceIterator {
    std::vector<std::string>* all = nullptr;
    std::size_t at = 0;
    bool done() const override { return at >= all->size(); }
    void Next() override { ++at; }
    const std::string& value() const override { return (*all)[at]; }
    sentencepiece::util::Status status() const override { return {}; }
  } it;
  it.all = &lines;
  sentencepiece::logging::SetMinLogLevel(2);
  std::string plain;
  BOOST_REQUIRE(
      sentencepiece::SentencePieceTrainer::Train(
          {{"vocab_size", "100"}, {"pad_id", "3"}, {"eos_id", "2"}, {"hard_vocab_limit", "false"}},
          &it, &plain)
          .ok());
  const std::string no_bytes = error(dir.write("plain.model", plain));
  BOOST_TEST(contains(no_bytes,
                      "plain.model: the model has no byte fallback (0 byte pieces, not "
                      "256), so some text would be unknown"),
             no_bytes);
  it.at = 0;
  BOOST_REQUIRE(sentencepiece::SentencePieceTrainer::Train({{"vocab_size", "400"},
                                                            {"hard_vocab_limit", "false"},
                                                            {"pad_id", "3"},
                                                            {"eos_id", "2"},
                                                            {"byte_fallback", "true"}},
                                                           &it, &plain)
                    .ok());
  const std::string inexact = error(dir.write("normalised.model", plain));
  BOOST_TEST(
      contains(inexact, "normalised.model: the model does not decode back to the exact text"),
      inexact);
}

BOOST_AUTO_TEST_CASE(the_checkpoint_file_must_be_there) {
  const std::string missing = error_of([] {
    load_tokenizer("sentencepiece", {{"vocab.txt", "x\n"}}, "run/checkpoint");
  });
  BOOST_TEST(missing ==
             "run/checkpoint: the SentencePiece tokenizer's sentencepiece.model is missing");
}

BOOST_AUTO_TEST_SUITE_END()
