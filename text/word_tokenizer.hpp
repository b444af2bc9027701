// The word-level tokenizer ("word", the default `tokenizer:`), RustGPT's splitting
// rule; the Tokenizer interface is text/tokenizer.hpp.
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
// decode(): tokens joined by one space, except where the split removed none: before
// closing punctuation (. , : ; ! ? ) '), after '(', around a '.' or ',' between two
// numbers ("8 , 849" -> "8,849", "27 . 3" -> "27.3"), and after the apostrophe of an
// English contraction (a word ending in a letter, then ', then s t re ve ll d m:
// "don ' t" -> "don't"). The split lost where spaces were, so this is a guess: "1, 2"
// reads back as "1,2"; the suffix list keeps a closing quote off the next word
// ("'yes' and", not "'yes'and").
//
// File format (save/load, and vocab.txt in a checkpoint): one token per line, UTF-8,
// '\n' line ends, no blank lines. Tokens never contain whitespace, so lines are
// unambiguous. The word tokenizer has no config keys: {type: word}.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "text/tokenizer.hpp"

namespace strata {

class WordTokenizer final : public Tokenizer {
 public:
  static constexpr const char* kType = "word";
  static constexpr const char* kSummary =
      "words and single punctuation marks (RustGPT's rule), vocabulary from the data";
  static constexpr const char* kFile = "vocab.txt";  // its file in a checkpoint

  static constexpr std::string_view kPad = "<pad>";
  static constexpr std::string_view kUnk = "<unk>";
  static constexpr std::string_view kEos = "</s>";

  // The registry's hooks (text/tokenizer.hpp): no keys of its own; build(texts);
  // the checkpoint's vocab.txt.
  static Schema schema() { return {}; }
  static std::unique_ptr<Tokenizer> from_data(const TextSource& texts, const ConfigSection& config);
  static std::unique_ptr<Tokenizer> load_files(const TokenizerFiles& files, const std::string& dir);

  // The vocabulary of `texts` (specials first, then sorted tokens; see above).
  static WordTokenizer build(const std::vector<std::string>& texts);
  static WordTokenizer build(const TextSource& texts);

  // Takes `tokens` as the id order. Throws strata::Error "<source>:<line>: ..." for an
  // empty token, a token with whitespace or invalid UTF-8, or a duplicate, and
  // "<source>: ..." for a missing special or an empty list. Line = index + 1.
  static WordTokenizer from_tokens(std::vector<std::string> tokens,
                                   const std::string& source = "<vocabulary>");

  // The splitting rule alone; needs no vocabulary.
  static std::vector<std::string> split_text(std::string_view text);
  std::vector<std::string> split(std::string_view text) const { return split_text(text); }

  std::string type() const override { return kType; }
  // Never drops a word: unknown ones become unk_id() and are listed in `unknown`.
  Encoded encode(std::string_view text) const override;
  // Readable text (see above; specials shown as tokens). Throws strata::Error for an
  // id outside [0, size()).
  std::string decode(const std::vector<std::int32_t>& ids) const override;
  TokenizerFiles files() const override { return {{kFile, serialize()}}; }

  bool contains(std::string_view token) const;
  std::int32_t id(std::string_view token) const;    // throws strata::Error if absent
  const std::string& token(std::int32_t id) const;  // throws strata::Error if out of range
  const std::vector<std::string>& tokens() const { return tokens_; }

  std::size_t size() const override { return tokens_.size(); }
  std::int32_t pad_id() const override { return pad_id_; }
  std::int32_t unk_id() const override { return unk_id_; }
  std::int32_t eos_id() const override { return eos_id_; }

  // The file contents: each token followed by '\n'. Checkpoints can embed this.
  std::string serialize() const;
  // Inverse of serialize(); `source` names the origin in error messages. A final line
  // without '\n' is accepted; a '\r' (CRLF file) is rejected as whitespace.
  static WordTokenizer parse(std::string_view text, const std::string& source);

  // Throws strata::Error "<path>: ..." when the file cannot be written or read.
  void save(const std::string& path) const;
  static WordTokenizer load(const std::string& path);

 private:
  WordTokenizer() = default;

  std::vector<std::string> tokens_;
  std::map<std::string, std::int32_t, std::less<>> ids_;
  std::int32_t pad_id_ = -1;
  std::int32_t unk_id_ = -1;
  std::int32_t eos_id_ = -1;
};

}  // namespace strata
