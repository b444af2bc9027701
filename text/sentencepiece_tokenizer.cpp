#include "text/sentencepiece_tokenizer.hpp"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <unordered_map>

#include "framework/errors.hpp"
#include "framework/text.hpp"
#include "text/dataset.hpp"

// Exported by libsentencepiece but not declared in its public headers: the trainer logs
// every stage to stderr at INFO level.
namespace sentencepiece::logging {
int GetMinLogLevel();
void SetMinLogLevel(int level);
}  // namespace sentencepiece::logging

namespace strata {

namespace {

constexpr double kMaxVocabulary = 1 << 20;

// The sentences the trainer is given: lines, long ones cut, a budget of them spread
// evenly over the texts.
class SentenceSample {
 public:
  SentenceSample(std::uint64_t total, std::uint64_t budget) : total_(total), budget_(budget) {}

  void add_text(std::string_view text) {
    std::size_t start = 0;
    while (start < text.size()) {
      std::size_t end = text.find('\n', start);
      if (end == std::string_view::npos) end = text.size();
      add_line(text.substr(start, end - start));
      start = end + 1;
    }
  }
  std::vector<std::string>& sentences() { return sentences_; }

 private:
  void add_line(std::string_view line) {
    while (!line.empty()) {
      const std::size_t cut = cut_at(line);
      add_sentence(line.substr(0, cut));
      line.remove_prefix(cut);
    }
  }
  // Where to cut a line so the first part fits: after the last space within the limit,
  // else at the last character boundary within it.
  static std::size_t cut_at(std::string_view line) {
    const std::size_t limit = SentencePieceTokenizer::kMaxSentenceBytes;
    if (line.size() <= limit) return line.size();
    const std::size_t space = line.rfind(' ', limit - 1);
    if (space != std::string_view::npos && space > limit / 2) return space + 1;
    std::size_t cut = limit;
    while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
    return cut > 0 ? cut : limit;
  }
  void add_sentence(std::string_view s) {
    seen_ += s.size();
    if (s.find_first_not_of(" \t\r") == std::string_view::npos) return;
    // Kept while the bytes kept stay within the budget's share of those seen.
    const double share = total_ <= budget_ ? 1.0 : double(budget_) / double(total_);
    if (double(kept_ + s.size()) > share * double(seen_) + 1) return;
    kept_ += s.size();
    sentences_.emplace_back(s);
  }

  std::uint64_t total_, budget_, seen_ = 0, kept_ = 0;
  std::vector<std::string> sentences_;
};

class Sentences final : public sentencepiece::SentenceIterator {
 public:
  explicit Sentences(const std::vector<std::string>& all) : all_(all) {}
  bool done() const override { return at_ >= all_.size(); }
  void Next() override { ++at_; }
  const std::string& value() const override { return all_[at_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& all_;
  std::size_t at_ = 0;
};

// Quiet while it lives: SentencePiece logs at INFO level to stderr.
class QuietSentencePiece {
 public:
  QuietSentencePiece() : level_(sentencepiece::logging::GetMinLogLevel()) {
    sentencepiece::logging::SetMinLogLevel(2);
  }
  ~QuietSentencePiece() { sentencepiece::logging::SetMinLogLevel(level_); }
  QuietSentencePiece(const QuietSentencePiece&) = delete;
  QuietSentencePiece& operator=(const QuietSentencePiece&) = delete;

 private:
  int level_;
};

std::unordered_map<std::string, std::string> trainer_options(const ConfigSection& config) {
  return {{"model_type", config.string("model_type")},
          {"vocab_size", std::to_string(config.integer("vocab_size"))},
          {"character_coverage", std::to_string(config.number("character_coverage"))},
          {"split_digits", config.boolean("split_digits") ? "true" : "false"},
          {"byte_fallback", "true"},
          {"normalization_rule_name", "identity"},
          {"add_dummy_prefix", "false"},
          {"remove_extra_whitespaces", "false"},
          {"allow_whitespace_only_pieces", "true"},
          {"hard_vocab_limit", "false"},  // a small corpus gets the vocabulary it has
          {"num_threads", "1"},
          {"input_sentence_size", "0"},
          {"max_sentence_length", std::to_string(2 * SentencePieceTokenizer::kMaxSentenceBytes)},
          {"pad_id", "0"},
          {"unk_id", "1"},
          {"eos_id", "2"},
          {"bos_id", "-1"}};
}

std::string train_model(const TextSource& texts, const ConfigSection& config) {
  SentenceSample sample(texts.bytes(), std::uint64_t(config.integer("max_train_bytes")));
  texts.for_each([&](std::string_view text) { sample.add_text(text); });
  if (sample.sentences().empty())
    config.fail("type", "no text to train the SentencePiece model on (the phases' data is empty)");
  Sentences sentences(sample.sentences());
  std::string model;
  sentencepiece::util::Status status;
  {
    const QuietSentencePiece quiet;
    sentencepiece::SetRandomGeneratorSeed(1);
    status =
        sentencepiece::SentencePieceTrainer::Train(trainer_options(config), &sentences, &model);
  }
  if (!status.ok())
    config.fail("vocab_size",
                std::string("SentencePiece could not train a model: ") + status.error_message());
  return model;
}

void check(const sentencepiece::util::Status& status, const std::string& what) {
  if (!status.ok()) throw Error("SentencePiece: " + what + ": " + status.error_message());
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer()
    : processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

Schema SentencePieceTokenizer::schema() {
  return {
      string_key("model_type", "bpe", "how pieces are learnt", {"bpe", "unigram"}),
      integer_key("vocab_size", "8000",
                  "pieces to learn, at most (3 specials and 256 bytes included)", 260,
                  kMaxVocabulary),
      string_key("model", "",
                 "a model file to load instead of training one (strata tokenizer writes one)"),
      number_key("character_coverage", "0.9995",
                 "share of the characters seen that become pieces; the rest are bytes", 0.5, 1),
      boolean_key("split_digits", "false", "every digit a piece of its own"),
      integer_key("max_train_bytes", "16777216",
                  "most text the trainer reads (a sample spread over the data)", 1, 4.0e9),
  };
}

std::unique_ptr<Tokenizer> SentencePieceTokenizer::from_data(const TextSource& texts,
                                                             const ConfigSection& config) {
  const std::string path = config.string("model");
  if (path.empty()) {
    const std::string model = train_model(texts, config);
    try {
      return from_model(model, "the trained SentencePiece model");
    } catch (const Error& e) {
      config.fail("type", e.what());
    }
  }
  for (const char* key :
       {"model_type", "vocab_size", "character_coverage", "split_digits", "max_train_bytes"})
    if (config.has(key))
      config.fail(key, std::string("\"") + key + "\" trains a model, and \"model\" loads one: " +
                           "give one or the other");
  try {
    return from_model(read_data_file(path), path);
  } catch (const Error& e) {
    config.fail("model", e.what());
  }
}

std::unique_ptr<Tokenizer> SentencePieceTokenizer::load_files(const TokenizerFiles& files,
                                                              const std::string& dir) {
  const auto it = files.find(kFile);
  if (it == files.end())
    throw Error(dir + ": the SentencePiece tokenizer's " + kFile + " is missing");
  return from_model(it->second, dir + "/" + kFile);
}

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::from_model(
    const std::string& serialized, const std::string& source) {
  std::unique_ptr<SentencePieceTokenizer> t(new SentencePieceTokenizer());
  if (const auto status = t->processor_->LoadFromSerializedProto(serialized); !status.ok())
    throw Error(source + ": not a SentencePiece model (" + status.error_message() + ")");
  t->model_ = serialized;
  const auto& p = *t->processor_;
  if (p.pad_id() < 0 || p.eos_id() < 0 || p.unk_id() < 0)
    throw Error(source + ": the model has no <pad>, <unk> or </s> piece (train it with pad_id, " +
                "unk_id and eos_id set, as strata tokenizer does)");
  int bytes = 0;
  for (int id = 0; id < p.GetPieceSize(); ++id) bytes += p.IsByte(id) ? 1 : 0;
  if (bytes != 256)
    throw Error(source + ": the model has no byte fallback (" + std::to_string(bytes) +
                " byte pieces, not 256), so some text would be unknown");
  const std::string probe = "  Caf\xC3\xA9 \xF0\x9F\x98\x80\t\n\n x  </s>";
  if (t->decode(t->encode(probe).ids) != probe)
    throw Error(source + ": the model does not decode back to the exact text (trained with " +
                "normalisation, a dummy prefix or whitespace removal)");
  return t;
}

void SentencePieceTokenizer::append_ids(std::string_view text,
                                        std::vector<std::int32_t>& ids) const {
  if (text.empty()) return;
  std::vector<int> part;
  check(processor_->Encode(text, &part), "encode");
  ids.insert(ids.end(), part.begin(), part.end());
}

Encoded SentencePieceTokenizer::encode(std::string_view text) const {
  Encoded out;
  for (std::size_t at = 0;;) {
    const std::size_t eos = text.find(kEos, at);
    append_ids(text.substr(at, eos == std::string_view::npos ? text.npos : eos - at), out.ids);
    if (eos == std::string_view::npos) break;
    out.ids.push_back(eos_id());
    at = eos + kEos.size();
  }
  return out;
}

std::string SentencePieceTokenizer::decode(const std::vector<std::int32_t>& ids) const {
  std::string text;
  std::vector<int> run;
  auto flush = [&] {
    std::string part;
    check(processor_->Decode(run, &part), "decode");
    text += part;
    run.clear();
  };
  for (const std::int32_t id : ids) {
    if (id < 0 || std::size_t(id) >= size())
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                  std::to_string(size()) + ")");
    if (id == eos_id()) {
      flush();
      text += kEos;
    } else if (id != pad_id()) {
      run.push_back(id);
    }
  }
  flush();
  return text;
}

std::size_t SentencePieceTokenizer::size() const { return std::size_t(processor_->GetPieceSize()); }
std::int32_t SentencePieceTokenizer::pad_id() const { return processor_->pad_id(); }
std::int32_t SentencePieceTokenizer::unk_id() const { return processor_->unk_id(); }
std::int32_t SentencePieceTokenizer::eos_id() const { return processor_->eos_id(); }

std::string SentencePieceTokenizer::piece(std::int32_t id) const {
  if (id < 0 || std::size_t(id) >= size())
    throw Error("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                std::to_string(size()) + ")");
  return processor_->IdToPiece(id);
}

}  // namespace strata
