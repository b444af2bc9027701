// The Tokenizer interface: text <-> token ids for a language model, chosen by the
// config's `tokenizer:` mapping ({type: word} when absent) from a registry by type name.
//
// A tokenizer is built from the phases' texts at the start of `strata train`
// (from_data) and stored in the run's checkpoint as named files (files(); e.g. the word
// tokenizer's vocab.txt), from which a resumed run, `generate`, `chat` and `evaluate`
// rebuild it (load). The checkpoint records the type; one without it holds a word
// tokenizer.
//
// Adding a tokenizer ("bpe" in bpe_tokenizer.hpp/.cpp): a class deriving from Tokenizer
// with
//   static constexpr const char* kSummary;
//   static Schema schema();      // its own keys (`type` is every tokenizer's)
//   static std::unique_ptr<Tokenizer> from_data(const TextSource& texts,
//                                               const ConfigSection& config);
//   static std::unique_ptr<Tokenizer> load_files(const TokenizerFiles& files,
//                                                const std::string& dir);
// and one line, in the tree or in a plugin library (`--plugin`, `plugins:`):
//   STRATA_REGISTER_TOKENIZER("bpe", BpeTokenizer);
// (the built-ins are listed in register_builtin_tokenizers(), tokenizer.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "framework/config.hpp"
#include "framework/registry.hpp"

namespace strata {

struct Encoded {
  std::vector<std::int32_t> ids;     // unknown pieces map to unk_id()
  std::vector<std::string> unknown;  // distinct unknown pieces, in order of first appearance
};

// A tokenizer's files in the checkpoint directory: plain file name -> contents.
using TokenizerFiles = std::map<std::string, std::string>;

// The texts a tokenizer is built from, visited in order. A corpus is read as it is
// visited (it may not fit in memory), so a long document can arrive as consecutive
// pieces, cut where a line ends when one does (text/corpus.hpp).
class TextSource {
 public:
  virtual ~TextSource() = default;
  virtual void for_each(const std::function<void(std::string_view)>& visit) const = 0;
  // The bytes for_each will visit (a tokenizer that samples a budget of them uses it).
  virtual std::uint64_t bytes() const = 0;
};

// A TextSource over texts in memory (the examples of JSON and line files).
class TextList final : public TextSource {
 public:
  explicit TextList(const std::vector<std::string>& texts) : texts_(texts) {}
  void for_each(const std::function<void(std::string_view)>& visit) const override {
    for (const std::string& text : texts_) visit(text);
  }
  std::uint64_t bytes() const override {
    std::uint64_t n = 0;
    for (const std::string& text : texts_) n += text.size();
    return n;
  }

 private:
  const std::vector<std::string>& texts_;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  virtual std::string type() const = 0;  // its registered name
  // Never drops input: what the tokenizer cannot represent becomes unk_id() and is
  // listed in `unknown`.
  virtual Encoded encode(std::string_view text) const = 0;
  // Text for a reader. Throws strata::Error for an id outside [0, size()).
  virtual std::string decode(const std::vector<std::int32_t>& ids) const = 0;

  virtual std::size_t size() const = 0;  // ids are [0, size())
  virtual std::int32_t pad_id() const = 0;
  virtual std::int32_t unk_id() const = 0;
  virtual std::int32_t eos_id() const = 0;

  // What the checkpoint stores; load_files of the same type reads it back. Names are
  // plain file names (letters, digits, '.', '_', '-'; see checkpoint.hpp).
  virtual TokenizerFiles files() const = 0;
};

struct TokenizerInfo {
  std::string type;
  std::string summary;
  Schema schema;  // its own keys
  std::function<std::unique_ptr<Tokenizer>(const TextSource&, const ConfigSection&)> from_data;
  // `dir` names the checkpoint directory in errors.
  std::function<std::unique_ptr<Tokenizer>(const TokenizerFiles&, const std::string&)> load;
  std::string origin = "built-in";
};

using TokenizerRegistry = Registry<TokenizerInfo>;

inline constexpr const char* kDefaultTokenizer = "word";

// The process-wide registry (built-ins registered on first use).
TokenizerRegistry& tokenizer_registry();
void register_builtin_tokenizers(TokenizerRegistry& registry);  // tokenizer.cpp

template <class K>
TokenizerInfo make_tokenizer_info(std::string type) {
  TokenizerInfo info;
  info.type = std::move(type);
  info.summary = K::kSummary;
  info.schema = K::schema();
  info.from_data = [](const TextSource& texts, const ConfigSection& config) {
    return K::from_data(texts, config);
  };
  info.load = [](const TokenizerFiles& files, const std::string& dir) {
    return K::load_files(files, dir);
  };
  return info;
}

// The validated `tokenizer:` mapping (an invalid node: the default {type: word}). An
// unknown type or key is a ConfigError at its position, with did-you-mean.
struct TokenizerChoice {
  const TokenizerInfo* info = nullptr;
  ConfigSection section;
};
TokenizerChoice choose_tokenizer(const ConfigNode& node);

// The chosen tokenizer built from `texts`. An error of the tokenizer's own (a
// SentencePiece model file that cannot be read, training that fails) names the
// `tokenizer:` section's position.
std::unique_ptr<Tokenizer> make_tokenizer(const ConfigNode& node, const TextSource& texts);
std::unique_ptr<Tokenizer> make_tokenizer(const ConfigNode& node,
                                          const std::vector<std::string>& texts);

// The tokenizer of type `type` from its checkpoint files; an unknown type is an error
// naming `dir` (a checkpoint written by a build with another tokenizer).
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& type, const TokenizerFiles& files,
                                          const std::string& dir);

// What STRATA_REGISTER_TOKENIZER calls: adds to tokenizer_registry() with the loading
// library as origin; a failure (a clash, a schema() that throws) goes to
// registration_log() instead of ending the process.
template <class K>
bool register_tokenizer_at_load(const char* type) noexcept {
  return register_at_load("tokenizer", type, [&] {
    return add_at_load(tokenizer_registry(), make_tokenizer_info<K>(type));
  });
}

}  // namespace strata

#define STRATA_REGISTER_TOKENIZER(TYPE_NAME, CLASS)                                          \
  static const bool STRATA_CONCAT(strata_tokenizer_registered_, __LINE__) [[maybe_unused]] = \
      ::strata::register_tokenizer_at_load<CLASS>(TYPE_NAME)
