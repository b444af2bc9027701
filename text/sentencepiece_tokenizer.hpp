// The SentencePiece tokenizer ("sentencepiece"): subword pieces, BPE or unigram, from
// Google's SentencePiece library (Debian's libsentencepiece-dev, linked privately).
//
//   tokenizer: {type: sentencepiece, model_type: bpe, vocab_size: 4000}   # trained
//   tokenizer: {type: sentencepiece, model: fortunes.model}              # loaded
//
// Trained at the start of `strata train` from the phases' texts (all of them, or an
// evenly spread sample of max_train_bytes: a line is kept while the bytes kept stay
// within the budget's share of the bytes seen), in memory, on one thread: the result
// depends on the texts and the keys alone (SentencePiece's unigram trainer splits its
// work by thread count, so more threads would give other pieces; its random generator
// is not used when every sentence given is trained on, and is seeded with a constant
// anyway). Lines are the trainer's sentences; a line longer than 4096 bytes is cut at
// a space (or a character boundary) into pieces no longer than that, so a single 1 MB
// line still trains it. Or loaded from a model file (`strata tokenizer CONFIG --out
// FILE` writes one; spm_train's work when trained with the options below).
//
// Exact text: the model is trained with identity normalisation, no dummy prefix, no
// whitespace removal, and byte fallback, so any UTF-8 text encodes without an unknown
// piece (a character outside the pieces becomes its UTF-8 bytes, <0xE6> ...) and
// decode(encode(text)) == text, whitespace runs, newlines, emoji and all. A loaded
// model must pass the same round trip on a probe text and have the 256 byte pieces.
//
// Ids: <pad> 0, <unk> 1, </s> 2 (end of sequence / document; no <s>), then the pieces.
// The text "</s>" encodes as the </s> id (RustGPT's examples end in it) and decodes
// back to "</s>"; <pad> decodes to nothing.
//
// In a checkpoint: sentencepiece.model, the serialized model (SentencePiece's
// ModelProto, what spm_train writes as NAME.model).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "text/tokenizer.hpp"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace strata {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  static constexpr const char* kType = "sentencepiece";
  static constexpr const char* kSummary =
      "SentencePiece subwords (BPE or unigram) with byte fallback: exact text, no unknowns";
  static constexpr const char* kFile = "sentencepiece.model";  // its file in a checkpoint
  static constexpr std::string_view kEos = "</s>";
  // A trainer sentence is at most this long (longer lines are cut).
  static constexpr std::size_t kMaxSentenceBytes = 4096;

  static Schema schema();
  // Trains, or loads `model:`; errors are ConfigErrors at the key at fault.
  static std::unique_ptr<Tokenizer> from_data(const TextSource& texts, const ConfigSection& config);
  static std::unique_ptr<Tokenizer> load_files(const TokenizerFiles& files, const std::string& dir);

  // The model in `serialized` (a ModelProto); `source` names it in errors, which say
  // what is wrong (not a model, no byte fallback, no <pad> or </s>, not exact).
  static std::unique_ptr<SentencePieceTokenizer> from_model(const std::string& serialized,
                                                            const std::string& source);

  ~SentencePieceTokenizer() override;

  std::string type() const override { return kType; }
  Encoded encode(std::string_view text) const override;
  std::string decode(const std::vector<std::int32_t>& ids) const override;
  std::size_t size() const override;
  std::int32_t pad_id() const override;
  std::int32_t unk_id() const override;
  std::int32_t eos_id() const override;
  TokenizerFiles files() const override { return {{kFile, model_}}; }

  std::string piece(std::int32_t id) const;  // "▁the", "<0x0A>"; throws for a bad id

 private:
  SentencePieceTokenizer();
  void append_ids(std::string_view text, std::vector<std::int32_t>& ids) const;

  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
  std::string model_;  // serialized
};

}  // namespace strata
