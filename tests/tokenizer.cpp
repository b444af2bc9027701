// The word-level tokenizer: RustGPT's splitting rule, vocabulary layout, unknown
// words, decoding and the vocabulary file; the Tokenizer interface: the `tokenizer:`
// config key, the registry, and the tokenizer's files in a checkpoint.
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "framework/errors.hpp"
#include "framework/files.hpp"
#include "test_support.hpp"
#include "text/word_tokenizer.hpp"
#include "training/checkpoint.hpp"
#include "training/run_config.hpp"

using namespace strata;
namespace fs = std::filesystem;

namespace {

using strata::testing::error_of;
using strata::testing::TempDir;

using Tokens = std::vector<std::string>;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tokenizer)

BOOST_AUTO_TEST_CASE(punctuation_is_its_own_token) {
  BOOST_TEST(WordTokenizer::split_text("Hello, world!") == (Tokens{"Hello", ",", "world", "!"}));
  BOOST_TEST(
      WordTokenizer::split_text("User: What is it? Assistant: (a) test.") ==
      (Tokens{"User", ":", "What", "is", "it", "?", "Assistant", ":", "(", "a", ")", "test", "."}));
  // Runs of punctuation split character by character.
  BOOST_TEST(WordTokenizer::split_text("wait...!?") == (Tokens{"wait", ".", ".", ".", "!", "?"}));
}

BOOST_AUTO_TEST_CASE(whitespace_of_any_kind_separates) {
  BOOST_TEST(WordTokenizer::split_text("  a\tb\n\nc \r\n d  ") == (Tokens{"a", "b", "c", "d"}));
  BOOST_TEST(WordTokenizer::split_text("").empty());
  BOOST_TEST(WordTokenizer::split_text(" \t\n ").empty());
}

BOOST_AUTO_TEST_CASE(end_of_sequence_is_one_token) {
  BOOST_TEST(WordTokenizer::split_text("Snow is cold </s>") ==
             (Tokens{"Snow", "is", "cold", "</s>"}));
  // Only the whole word is special: glued to other text it is punctuation and letters,
  // as in RustGPT.
  BOOST_TEST(WordTokenizer::split_text("cold</s>") == (Tokens{"cold", "<", "/", "s", ">"}));
  BOOST_TEST(WordTokenizer::split_text("<pad> <unk>") ==
             (Tokens{"<", "pad", ">", "<", "unk", ">"}));
}

BOOST_AUTO_TEST_CASE(apostrophes_and_digits) {
  BOOST_TEST(WordTokenizer::split_text("27.3 days") == (Tokens{"27", ".", "3", "days"}));
  BOOST_TEST(WordTokenizer::split_text("Earth's moon isn't") ==
             (Tokens{"Earth", "'", "s", "moon", "isn", "'", "t"}));
  BOOST_TEST(WordTokenizer::split_text("1,000-year") == (Tokens{"1", ",", "000", "-", "year"}));
}

BOOST_AUTO_TEST_CASE(non_ascii_bytes_are_word_characters) {
  // "café," in UTF-8: the two bytes of é stay inside the word.
  BOOST_TEST(WordTokenizer::split_text("caf\xC3\xA9,") == (Tokens{"caf\xC3\xA9", ","}));
}

BOOST_AUTO_TEST_CASE(vocabulary_is_specials_then_sorted_tokens) {
  const WordTokenizer t = WordTokenizer::build({"the cat sat. </s>", "The dog, the cat </s>"});
  const Tokens expected{"<pad>", "<unk>", "</s>", ",", ".", "The", "cat", "dog", "sat", "the"};
  BOOST_TEST(t.tokens() == expected);
  BOOST_TEST(t.size() == expected.size());
  BOOST_TEST(t.pad_id() == 0);
  BOOST_TEST(t.unk_id() == 1);
  BOOST_TEST(t.eos_id() == 2);
  BOOST_TEST(t.id("cat") == 6);
  BOOST_TEST(t.token(9) == "the");
  BOOST_TEST(t.contains("dog"));
  BOOST_TEST(!t.contains("bird"));
  BOOST_TEST(contains(error_of([&] { t.id("bird"); }), "\"bird\""));
  BOOST_TEST(contains(error_of([&] { t.token(10); }), "10"));
  BOOST_TEST(contains(error_of([&] { t.token(-1); }), "-1"));
}

BOOST_AUTO_TEST_CASE(specials_are_present_even_if_unused) {
  const WordTokenizer t = WordTokenizer::build({"a b"});
  BOOST_TEST(t.tokens() == (Tokens{"<pad>", "<unk>", "</s>", "a", "b"}));
}

BOOST_AUTO_TEST_CASE(unknown_words_map_to_unk_and_are_reported) {
  const WordTokenizer t = WordTokenizer::build({"the cat sat </s>"});
  const Encoded e = t.encode("the bird sat, the bird fled </s>");
  const std::int32_t the = t.id("the"), sat = t.id("sat"), unk = t.unk_id(), eos = t.eos_id();
  // Nothing is dropped: one id per token.
  BOOST_TEST(e.ids == (std::vector<std::int32_t>{the, unk, sat, unk, the, unk, unk, eos}));
  BOOST_TEST(e.unknown == (Tokens{"bird", ",", "fled"}));
  BOOST_TEST(t.encode("the cat").unknown.empty());
}

BOOST_AUTO_TEST_CASE(decode_of_encode_round_trips) {
  const std::string text = "User: How far is the Moon? Assistant: About 384,400 km. </s>";
  const WordTokenizer t = WordTokenizer::build({text});
  const Encoded e = t.encode(text);
  BOOST_TEST(e.unknown.empty());
  const std::string decoded = t.decode(e.ids);
  BOOST_TEST(decoded == text);
  BOOST_TEST(t.encode(decoded).ids == e.ids);
  BOOST_TEST(contains(error_of([&] { t.decode({0, 99}); }), "99"));
}

BOOST_AUTO_TEST_CASE(save_and_load_round_trip) {
  TempDir dir;
  const WordTokenizer t =
      WordTokenizer::build({"Rain falls, snow drifts. </s>", "caf\xC3\xA9 </s>"});
  const std::string path = (dir.path / "vocab.txt").string();
  t.save(path);
  const WordTokenizer u = WordTokenizer::load(path);
  BOOST_TEST(u.tokens() == t.tokens());
  BOOST_TEST(u.pad_id() == t.pad_id());
  BOOST_TEST(u.unk_id() == t.unk_id());
  BOOST_TEST(u.eos_id() == t.eos_id());
  BOOST_TEST(u.encode("snow falls </s>").ids == t.encode("snow falls </s>").ids);

  std::ifstream in(path, std::ios::binary);
  const std::string contents((std::istreambuf_iterator<char>(in)), {});
  BOOST_TEST(contents == t.serialize());
  BOOST_TEST(contents.substr(0, 18) == "<pad>\n<unk>\n</s>\n,");
}

BOOST_AUTO_TEST_CASE(loaded_ids_follow_the_file_order) {
  // A vocabulary written by someone else: the file order is the id order.
  const WordTokenizer t = WordTokenizer::parse("b\n</s>\na\n<unk>\n<pad>", "custom");
  BOOST_TEST(t.id("b") == 0);
  BOOST_TEST(t.eos_id() == 1);
  BOOST_TEST(t.unk_id() == 3);
  BOOST_TEST(t.pad_id() == 4);
}

BOOST_AUTO_TEST_CASE(corrupted_vocabulary_files_are_rejected_with_their_line) {
  TempDir dir;
  const std::string dup = dir.write("dup.txt", "<pad>\n<unk>\n</s>\ncat\ndog\ncat\n");
  const std::string msg = error_of([&] { WordTokenizer::load(dup); });
  BOOST_TEST_MESSAGE(msg);
  BOOST_TEST(msg.starts_with(dup + ":6: duplicate token \"cat\""));
  BOOST_TEST(contains(msg, "first on line 4"));

  const std::string blank = dir.write("blank.txt", "<pad>\n<unk>\n\n</s>\n");
  BOOST_TEST(error_of([&] { WordTokenizer::load(blank); }).starts_with(blank + ":3: empty token"));

  const std::string crlf = dir.write("crlf.txt", "<pad>\r\n<unk>\r\n</s>\r\n");
  const std::string crlf_msg = error_of([&] { WordTokenizer::load(crlf); });
  BOOST_TEST(crlf_msg.starts_with(crlf + ":1: token \"<pad>\\r\" contains whitespace"), crlf_msg);

  const std::string spaced = dir.write("spaced.txt", "<pad>\n<unk>\n</s>\nred fox\n");
  BOOST_TEST(error_of([&] { WordTokenizer::load(spaced); }).starts_with(spaced + ":4: "));

  const std::string latin1 = dir.write("latin1.txt", "<pad>\n<unk>\n</s>\ncaf\xE9\n");
  BOOST_TEST(error_of([&] {
               WordTokenizer::load(latin1);
             }).starts_with(latin1 + ":4: token is not valid UTF-8"));

  const std::string no_unk = dir.write("no_unk.txt", "<pad>\n</s>\ncat\n");
  BOOST_TEST(error_of([&] { WordTokenizer::load(no_unk); }) ==
             no_unk + ": missing special token \"<unk>\"");

  const std::string empty = dir.write("empty.txt", "");
  BOOST_TEST(error_of([&] { WordTokenizer::load(empty); }) == empty + ": empty vocabulary");

  const std::string missing = (dir.path / "absent.txt").string();
  BOOST_TEST(error_of([&] { WordTokenizer::load(missing); }).starts_with(missing + ": "));
}

BOOST_AUTO_TEST_CASE(decode_rejoins_contractions_and_numbers) {
  const std::string text =
      "I don't know. It's 8,849 m and 27.3 days; they're here (now), we'll see! </s>";
  const WordTokenizer t = WordTokenizer::build({text, "DON'T , I'M"});
  BOOST_TEST(t.decode(t.encode(text).ids) == text);
  BOOST_TEST(t.decode(t.encode("DON'T , I'M").ids) == "DON'T, I'M");
}

BOOST_AUTO_TEST_CASE(decode_keeps_the_spaces_it_cannot_explain) {
  // Not a contraction, not a number: the split keeps no trace, so a space is the guess.
  const std::string text = "the dogs' bone, 3. Then a, 3 and x.5 </s>";
  const WordTokenizer t = WordTokenizer::build({text});
  BOOST_TEST(t.decode(t.encode(text).ids) == "the dogs' bone, 3. Then a, 3 and x. 5 </s>");
  BOOST_TEST(t.decode({}) == "");
}

// ---- The Tokenizer interface ----

namespace {

RunConfig config_with(const std::string& tokenizer_line) {
  return parse_run_config("model: {layers: []}\noptimizer: {type: Adam}\n" + tokenizer_line,
                          "run.yaml");
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_word_tokenizer_is_the_default_and_registered) {
  BOOST_TEST(tokenizer_registry().contains("word"));
  const std::vector<std::string> texts = {"a cat sat </s>"};
  const auto absent = make_tokenizer(config_with("").tokenizer, texts);
  BOOST_TEST(absent->type() == "word");
  BOOST_TEST(absent->size() == 6u);  // 3 specials + a cat sat
  const auto chosen = make_tokenizer(config_with("tokenizer: {type: word}\n").tokenizer, texts);
  BOOST_TEST(chosen->decode(chosen->encode("a cat sat").ids) == "a cat sat");
}

BOOST_AUTO_TEST_CASE(a_bad_tokenizer_section_names_its_place) {
  auto error = [](const std::string& line) {
    return error_of([&] { make_tokenizer(config_with(line).tokenizer, {"a </s>"}); });
  };
  const std::string typo = error("tokenizer: {type: wrod}\n");
  BOOST_TEST(typo.starts_with("run.yaml:3:19: tokenizer: unknown tokenizer type \"wrod\""), typo);
  BOOST_TEST(contains(typo, "(did you mean \"word\"?); known types: sentencepiece, word"), typo);
  const std::string key = error("tokenizer: {type: word, vocab_size: 10}\n");
  BOOST_TEST(key.starts_with("run.yaml:3:"), key);
  BOOST_TEST(contains(key, "unknown key \"vocab_size\""), key);
  const std::string untyped = error("tokenizer: {}\n");
  BOOST_TEST(contains(untyped, "missing required key \"type\""), untyped);
  const std::string scalar = error("tokenizer: word\n");
  BOOST_TEST(scalar.starts_with("run.yaml:3:12: "), scalar);
}

BOOST_AUTO_TEST_CASE(the_checkpoint_keeps_the_tokenizer_type_and_files) {
  TempDir dir;
  const auto tokenizer = make_tokenizer(ConfigNode(), {"Hi there. </s>"});
  Checkpoint c;
  c.config_text = "seed: 1\n";
  c.tokenizer_type = tokenizer->type();
  c.tokenizer_files = tokenizer->files();
  save_checkpoint(dir.path.string(), c);
  const Checkpoint back = load_checkpoint(dir.path.string());
  BOOST_TEST(back.tokenizer_type == "word");
  const auto loaded = load_tokenizer(back.tokenizer_type, back.tokenizer_files, "ckpt");
  BOOST_TEST(loaded->decode(loaded->encode("Hi there.").ids) == "Hi there.");
  BOOST_TEST(error_of([&] {
               load_tokenizer("bpe", back.tokenizer_files, "ckpt");
             }).starts_with("ckpt/manifest.json: unknown tokenizer type \"bpe\""));
}

BOOST_AUTO_TEST_CASE(an_old_checkpoint_without_a_tokenizer_type_holds_a_word_tokenizer) {
  TempDir dir;
  Checkpoint c;
  c.tokenizer_files = {{"vocab.txt", "<pad>\n<unk>\n</s>\nhi\n"}};
  save_checkpoint(dir.path.string(), c);
  const std::string manifest_path = (dir.path / "checkpoint" / "manifest.json").string();
  auto manifest = nlohmann::json::parse(read_file(manifest_path));
  manifest.erase("tokenizer");
  write_file_atomic(manifest_path, manifest.dump());
  const Checkpoint back = load_checkpoint(dir.path.string());
  BOOST_TEST(back.tokenizer_type == "word");
  BOOST_TEST(load_tokenizer(back.tokenizer_type, back.tokenizer_files, "ckpt")->size() == 4u);
}

BOOST_AUTO_TEST_CASE(tokenizer_file_names_stay_inside_the_checkpoint) {
  TempDir dir;
  Checkpoint c;
  c.tokenizer_files = {{"model.npz", "x"}};
  BOOST_TEST(contains(error_of([&] { save_checkpoint(dir.path.string(), c); }),
                      "tokenizer file name \"model.npz\" is not a plain file name of its own"));
  c.tokenizer_files = {{"vocab.txt", "<pad>\n<unk>\n</s>\n"}};
  save_checkpoint(dir.path.string(), c);
  const std::string manifest_path = (dir.path / "checkpoint" / "manifest.json").string();
  auto manifest = nlohmann::json::parse(read_file(manifest_path));
  manifest["tokenizer"]["files"] = {"../../secret"};
  write_file_atomic(manifest_path, manifest.dump());
  const std::string msg = error_of([&] { load_checkpoint(dir.path.string()); });
  BOOST_TEST(msg.starts_with(manifest_path + ": tokenizer file name \"../../secret\""), msg);
}

BOOST_AUTO_TEST_SUITE_END()
