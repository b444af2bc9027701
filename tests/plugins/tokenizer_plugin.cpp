// A plugin for the tests that registers a tokenizer (loaded with load_plugin /
// --plugin / `plugins:`):
//   TestBytes  one token per byte: <pad> 0, <unk> 1, </s> 2, byte b -> 3 + b; the key
//              `eos_text` (default "</s>") is the text that encodes as </s>.
// Its checkpoint file, bytes.txt, holds eos_text.
#include <memory>

#include "framework/errors.hpp"
#include "text/tokenizer.hpp"

namespace {

using namespace strata;

class TestBytes final : public Tokenizer {
 public:
  static constexpr const char* kSummary = "test plugin: one token per byte";
  static Schema schema() {
    return {string_key("eos_text", "</s>", "the text that encodes as the </s> id")};
  }
  static std::unique_ptr<Tokenizer> from_data(const TextSource&, const ConfigSection& config) {
    return std::make_unique<TestBytes>(config.string("eos_text"));
  }
  static std::unique_ptr<Tokenizer> load_files(const TokenizerFiles& files,
                                               const std::string& dir) {
    const auto it = files.find("bytes.txt");
    if (it == files.end()) throw Error(dir + ": bytes.txt is missing");
    return std::make_unique<TestBytes>(it->second);
  }

  explicit TestBytes(std::string eos_text) : eos_text_(std::move(eos_text)) {}

  std::string type() const override { return "TestBytes"; }
  Encoded encode(std::string_view text) const override {
    Encoded out;
    for (std::size_t i = 0; i < text.size();) {
      if (!eos_text_.empty() && text.substr(i).starts_with(eos_text_)) {
        out.ids.push_back(eos_id());
        i += eos_text_.size();
      } else {
        out.ids.push_back(3 + static_cast<unsigned char>(text[i++]));
      }
    }
    return out;
  }
  std::string decode(const std::vector<std::int32_t>& ids) const override {
    std::string text;
    for (const std::int32_t id : ids) {
      if (id < 0 || std::size_t(id) >= size()) throw Error("token id out of range");
      if (id == eos_id()) text += eos_text_;
      if (id >= 3) text += char(id - 3);
    }
    return text;
  }
  std::size_t size() const override { return 3 + 256; }
  std::int32_t pad_id() const override { return 0; }
  std::int32_t unk_id() const override { return 1; }
  std::int32_t eos_id() const override { return 2; }
  TokenizerFiles files() const override { return {{"bytes.txt", eos_text_}}; }

 private:
  std::string eos_text_;
};

}  // namespace

STRATA_REGISTER_TOKENIZER("TestBytes", TestBytes);
