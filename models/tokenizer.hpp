// Word-level tokenizer with RustGPT's splitting rule.
//
// split(): the text is cut on ASCII whitespace; inside each word every ASCII
// punctuation character (std::ispunct on a byte < 0x80) becomes a token of its own
// and the runs between them are tokens; the whole word "</s>" stays one token.
//   "Hello, world!"   -> Hello , world !
//   "27.3 days </s>"  -> 27 . 3 days </s>
//   "don't"           -> don ' t
// Bytes >= 0x80 (UTF-8 continuation and lead bytes) are word characters.
//
// Vocabulary: ids are positions in the token list. build() lays it out as the three
// specials at fixed ids, then every other token seen in the texts sorted by byte
// order (std::string's operator<):
//   0 <pad>  padding of batches; never produced by split()
//   1 <unk>  stands for a word missing from the vocabulary; never produced by split()
//   2 </s>   end of sequence
//   3...     the remaining tokens, sorted, no duplicates
// A loaded vocabulary keeps the ids its file gives (line n, 1-based, is id n-1), so
// pad_id()/unk_id()/eos_id() are looked up, not assumed; build() makes them 0/1/2.
//
// File format (save/load): one token per line, UTF-8, '\n' line ends, no blank
// lines. Tokens never contain whitespace, so lines are unambiguous.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace strata {

struct Encoded {
  std::vector<std::int32_t> ids;     // one per split() token; unknown words map to unk_id()
  std::vector<std::string> unknown;  // distinct unknown tokens, in order of first appearance
};

class Tokenizer {
 public:
  static constexpr std::string_view kPad = "<pad>";
  static constexpr std::string_view kUnk = "<unk>";
  static constexpr std::string_view kEos = "</s>";

  // The vocabulary of `texts` (specials first, then sorted tokens; see above).
  static Tokenizer build(const std::vector<std::string>& texts);

  // Takes `tokens` as the id order. Throws strata::Error "<source>:<line>: ..." for an
  // empty token, a token with whitespace or invalid UTF-8, or a duplicate, and
  // "<source>: ..." for a missing special or an empty list. Line = index + 1.
  static Tokenizer from_tokens(std::vector<std::string> tokens,
                               const std::string& source = "<vocabulary>");

  // The splitting rule alone; needs no vocabulary.
  static std::vector<std::string> split_text(std::string_view text);
  std::vector<std::string> split(std::string_view text) const { return split_text(text); }

  // Never drops a word: unknown ones become unk_id() and are listed in `unknown`.
  Encoded encode(std::string_view text) const;
  // Tokens joined by single spaces (specials included). Throws strata::Error for an
  // id outside [0, size()).
  std::string decode(const std::vector<std::int32_t>& ids) const;

  bool contains(std::string_view token) const;
  std::int32_t id(std::string_view token) const;    // throws strata::Error if absent
  const std::string& token(std::int32_t id) const;  // throws strata::Error if out of range
  const std::vector<std::string>& tokens() const { return tokens_; }

  std::size_t size() const { return tokens_.size(); }
  std::int32_t pad_id() const { return pad_id_; }
  std::int32_t unk_id() const { return unk_id_; }
  std::int32_t eos_id() const { return eos_id_; }

  // The file contents: each token followed by '\n'. Checkpoints can embed this.
  std::string serialize() const;
  // Inverse of serialize(); `source` names the origin in error messages. A final line
  // without '\n' is accepted; a '\r' (CRLF file) is rejected as whitespace.
  static Tokenizer parse(std::string_view text, const std::string& source);

  // Throws strata::Error "<path>: ..." when the file cannot be written or read.
  void save(const std::string& path) const;
  static Tokenizer load(const std::string& path);

 private:
  Tokenizer() = default;

  std::vector<std::string> tokens_;
  std::map<std::string, std::int32_t, std::less<>> ids_;
  std::int32_t pad_id_ = -1;
  std::int32_t unk_id_ = -1;
  std::int32_t eos_id_ = -1;
};

}  // namespace strata
