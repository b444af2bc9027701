// The word-level tokenizer: RustGPT's splitting rule, vocabulary layout, unknown
// words, and the vocabulary file.
#include "models/tokenizer.hpp"

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "framework/errors.hpp"
#include "test_support.hpp"

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
  BOOST_TEST(Tokenizer::split_text("Hello, world!") == (Tokens{"Hello", ",", "world", "!"}));
  BOOST_TEST(
      Tokenizer::split_text("User: What is it? Assistant: (a) test.") ==
      (Tokens{"User", ":", "What", "is", "it", "?", "Assistant", ":", "(", "a", ")", "test", "."}));
  // Runs of punctuation split character by character.
  BOOST_TEST(Tokenizer::split_text("wait...!?") == (Tokens{"wait", ".", ".", ".", "!", "?"}));
}

BOOST_AUTO_TEST_CASE(whitespace_of_any_kind_separates) {
  BOOST_TEST(Tokenizer::split_text("  a\tb\n\nc \r\n d  ") == (Tokens{"a", "b", "c", "d"}));
  BOOST_TEST(Tokenizer::split_text("").empty());
  BOOST_TEST(Tokenizer::split_text(" \t\n ").empty());
}

BOOST_AUTO_TEST_CASE(end_of_sequence_is_one_token) {
  BOOST_TEST(Tokenizer::split_text("Snow is cold </s>") == (Tokens{"Snow", "is", "cold", "</s>"}));
  // Only the whole word is special: glued to other text it is punctuation and letters,
  // as in RustGPT.
  BOOST_TEST(Tokenizer::split_text("cold</s>") == (Tokens{"cold", "<", "/", "s", ">"}));
  BOOST_TEST(Tokenizer::split_text("<pad> <unk>") == (Tokens{"<", "pad", ">", "<", "unk", ">"}));
}

BOOST_AUTO_TEST_CASE(apostrophes_and_digits) {
  BOOST_TEST(Tokenizer::split_text("27.3 days") == (Tokens{"27", ".", "3", "days"}));
  BOOST_TEST(Tokenizer::split_text("Earth's moon isn't") ==
             (Tokens{"Earth", "'", "s", "moon", "isn", "'", "t"}));
  BOOST_TEST(Tokenizer::split_text("1,000-year") == (Tokens{"1", ",", "000", "-", "year"}));
}

BOOST_AUTO_TEST_CASE(non_ascii_bytes_are_word_characters) {
  // "café," in UTF-8: the two bytes of é stay inside the word.
  BOOST_TEST(Tokenizer::split_text("caf\xC3\xA9,") == (Tokens{"caf\xC3\xA9", ","}));
}

BOOST_AUTO_TEST_CASE(vocabulary_is_specials_then_sorted_tokens) {
  const Tokenizer t = Tokenizer::build({"the cat sat. </s>", "The dog, the cat </s>"});
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
  const Tokenizer t = Tokenizer::build({"a b"});
  BOOST_TEST(t.tokens() == (Tokens{"<pad>", "<unk>", "</s>", "a", "b"}));
}

BOOST_AUTO_TEST_CASE(unknown_words_map_to_unk_and_are_reported) {
  const Tokenizer t = Tokenizer::build({"the cat sat </s>"});
  const Encoded e = t.encode("the bird sat, the bird fled </s>");
  const std::int32_t the = t.id("the"), sat = t.id("sat"), unk = t.unk_id(), eos = t.eos_id();
  // Nothing is dropped: one id per token.
  BOOST_TEST(e.ids == (std::vector<std::int32_t>{the, unk, sat, unk, the, unk, unk, eos}));
  BOOST_TEST(e.unknown == (Tokens{"bird", ",", "fled"}));
  BOOST_TEST(t.encode("the cat").unknown.empty());
}

BOOST_AUTO_TEST_CASE(decode_of_encode_round_trips) {
  const std::string text = "User: How far is the Moon? Assistant: About 384,400 km. </s>";
  const Tokenizer t = Tokenizer::build({text});
  const Encoded e = t.encode(text);
  BOOST_TEST(e.unknown.empty());
  const std::string decoded = t.decode(e.ids);
  BOOST_TEST(decoded == "User : How far is the Moon ? Assistant : About 384 , 400 km . </s>");
  BOOST_TEST(t.encode(decoded).ids == e.ids);
  BOOST_TEST(contains(error_of([&] { t.decode({0, 99}); }), "99"));
}

BOOST_AUTO_TEST_CASE(save_and_load_round_trip) {
  TempDir dir;
  const Tokenizer t = Tokenizer::build({"Rain falls, snow drifts. </s>", "caf\xC3\xA9 </s>"});
  const std::string path = (dir.path / "vocab.txt").string();
  t.save(path);
  const Tokenizer u = Tokenizer::load(path);
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
  const Tokenizer t = Tokenizer::parse("b\n</s>\na\n<unk>\n<pad>", "custom");
  BOOST_TEST(t.id("b") == 0);
  BOOST_TEST(t.eos_id() == 1);
  BOOST_TEST(t.unk_id() == 3);
  BOOST_TEST(t.pad_id() == 4);
}

BOOST_AUTO_TEST_CASE(corrupted_vocabulary_files_are_rejected_with_their_line) {
  TempDir dir;
  const std::string dup = dir.write("dup.txt", "<pad>\n<unk>\n</s>\ncat\ndog\ncat\n");
  const std::string msg = error_of([&] { Tokenizer::load(dup); });
  BOOST_TEST_MESSAGE(msg);
  BOOST_TEST(msg.starts_with(dup + ":6: duplicate token \"cat\""));
  BOOST_TEST(contains(msg, "first on line 4"));

  const std::string blank = dir.write("blank.txt", "<pad>\n<unk>\n\n</s>\n");
  BOOST_TEST(error_of([&] { Tokenizer::load(blank); }).starts_with(blank + ":3: empty token"));

  const std::string crlf = dir.write("crlf.txt", "<pad>\r\n<unk>\r\n</s>\r\n");
  const std::string crlf_msg = error_of([&] { Tokenizer::load(crlf); });
  BOOST_TEST(crlf_msg.starts_with(crlf + ":1: token \"<pad>\\r\" contains whitespace"), crlf_msg);

  const std::string spaced = dir.write("spaced.txt", "<pad>\n<unk>\n</s>\nred fox\n");
  BOOST_TEST(error_of([&] { Tokenizer::load(spaced); }).starts_with(spaced + ":4: "));

  const std::string latin1 = dir.write("latin1.txt", "<pad>\n<unk>\n</s>\ncaf\xE9\n");
  BOOST_TEST(error_of([&] {
               Tokenizer::load(latin1);
             }).starts_with(latin1 + ":4: token is not valid UTF-8"));

  const std::string no_unk = dir.write("no_unk.txt", "<pad>\n</s>\ncat\n");
  BOOST_TEST(error_of([&] { Tokenizer::load(no_unk); }) ==
             no_unk + ": missing special token \"<unk>\"");

  const std::string empty = dir.write("empty.txt", "");
  BOOST_TEST(error_of([&] { Tokenizer::load(empty); }) == empty + ": empty vocabulary");

  const std::string missing = (dir.path / "absent.txt").string();
  BOOST_TEST(error_of([&] { Tokenizer::load(missing); }).starts_with(missing + ": "));
}

BOOST_AUTO_TEST_SUITE_END()
