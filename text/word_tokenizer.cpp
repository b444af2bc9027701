#include "text/word_tokenizer.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include "framework/errors.hpp"
#include "framework/text.hpp"

namespace strata {
namespace {

// Only ASCII: std::isspace/ispunct on bytes >= 0x80 depend on the locale, and
// RustGPT's is_ascii_punctuation is ASCII by definition.
bool is_space(unsigned char c) { return c < 0x80 && std::isspace(c); }
bool is_punct(unsigned char c) { return c < 0x80 && std::ispunct(c); }

void split_word(std::string_view word, std::vector<std::string>& out) {
  std::size_t start = 0;
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (!is_punct(static_cast<unsigned char>(word[i]))) continue;
    if (i > start) out.emplace_back(word.substr(start, i - start));
    out.emplace_back(1, word[i]);
    start = i + 1;
  }
  if (start < word.size()) out.emplace_back(word.substr(start));
}

std::string printable(std::string_view token) {
  std::string out;
  for (char ch : token) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

bool all_digits(std::string_view token) {
  return !token.empty() &&
         std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool ends_in_letter(std::string_view token) {
  const auto c = static_cast<unsigned char>(token.back());
  return c < 0x80 && std::isalpha(c);
}

// What follows the apostrophe of an English contraction (don't, it's, we're, I'd).
bool contraction_suffix(std::string_view token) {
  std::string lower(token);
  for (char& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
  for (const char* suffix : {"s", "t", "re", "ve", "ll", "d", "m"})
    if (lower == suffix) return true;
  return false;
}

// Whether tokens[i] is written without a space before it (see decode() in the header).
bool joins_previous(const std::vector<std::string_view>& tokens, std::size_t i) {
  const std::string_view token = tokens[i], previous = tokens[i - 1];
  if (previous == "(") return true;
  if (token.size() == 1 && std::string_view(".,:;!?)'").find(token[0]) != std::string_view::npos)
    return true;
  if (i < 2) return false;
  const std::string_view before = tokens[i - 2];
  if ((previous == "," || previous == ".") && all_digits(before) && all_digits(token)) return true;
  return previous == "'" && ends_in_letter(before) && contraction_suffix(token);
}

}  // namespace

std::vector<std::string> WordTokenizer::split_text(std::string_view text) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(static_cast<unsigned char>(text[i]))) ++i;
    const std::size_t start = i;
    while (i < text.size() && !is_space(static_cast<unsigned char>(text[i]))) ++i;
    if (i == start) break;
    const std::string_view word = text.substr(start, i - start);
    if (word == kEos) {
      out.emplace_back(word);
    } else {
      split_word(word, out);
    }
  }
  return out;
}

WordTokenizer WordTokenizer::build(const std::vector<std::string>& texts) {
  return build(TextList(texts));
}

WordTokenizer WordTokenizer::build(const TextSource& texts) {
  std::set<std::string> seen;
  texts.for_each([&](std::string_view text) {
    for (auto& token : split_text(text)) seen.insert(std::move(token));
  });
  std::vector<std::string> tokens{std::string(kPad), std::string(kUnk), std::string(kEos)};
  for (const auto& token : seen)  // std::set iterates in byte order
    if (token != kEos) tokens.push_back(token);
  return from_tokens(std::move(tokens), "<built vocabulary>");
}

WordTokenizer WordTokenizer::from_tokens(std::vector<std::string> tokens,
                                         const std::string& source) {
  if (tokens.empty()) throw Error(source + ": empty vocabulary");
  WordTokenizer t;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const std::string& token = tokens[i];
    const std::string where = source + ":" + std::to_string(i + 1) + ": ";
    if (token.empty()) throw Error(where + "empty token");
    if (std::any_of(token.begin(), token.end(),
                    [](char c) { return is_space(static_cast<unsigned char>(c)); }))
      throw Error(where + "token \"" + printable(token) + "\" contains whitespace");
    if (const std::size_t bad = invalid_utf8_at(token); bad != std::string_view::npos)
      throw Error(where + "token is not valid UTF-8 (byte " + std::to_string(bad + 1) + ")");
    const auto [it, inserted] = t.ids_.emplace(token, static_cast<std::int32_t>(i));
    if (!inserted)
      throw Error(where + "duplicate token \"" + printable(token) + "\" (first on line " +
                  std::to_string(it->second + 1) + ")");
  }
  for (auto special : {kPad, kUnk, kEos})
    if (!t.ids_.contains(special))
      throw Error(source + ": missing special token \"" + std::string(special) + "\"");
  t.tokens_ = std::move(tokens);
  t.pad_id_ = t.id(kPad);
  t.unk_id_ = t.id(kUnk);
  t.eos_id_ = t.id(kEos);
  return t;
}

Encoded WordTokenizer::encode(std::string_view text) const {
  Encoded out;
  for (const auto& token : split_text(text)) {
    if (auto it = ids_.find(token); it != ids_.end()) {
      out.ids.push_back(it->second);
      continue;
    }
    out.ids.push_back(unk_id_);
    if (std::find(out.unknown.begin(), out.unknown.end(), token) == out.unknown.end())
      out.unknown.push_back(token);
  }
  return out;
}

std::string WordTokenizer::decode(const std::vector<std::int32_t>& ids) const {
  std::vector<std::string_view> tokens;
  tokens.reserve(ids.size());
  for (std::int32_t id : ids) tokens.emplace_back(token(id));
  std::string out;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (i > 0 && !joins_previous(tokens, i)) out += ' ';
    out += tokens[i];
  }
  return out;
}

std::unique_ptr<Tokenizer> WordTokenizer::from_data(const TextSource& texts, const ConfigSection&) {
  return std::make_unique<WordTokenizer>(build(texts));
}

std::unique_ptr<Tokenizer> WordTokenizer::load_files(const TokenizerFiles& files,
                                                     const std::string& dir) {
  const auto it = files.find(kFile);
  if (it == files.end()) throw Error(dir + ": the word tokenizer's " + kFile + " is missing");
  return std::make_unique<WordTokenizer>(parse(it->second, dir + "/" + kFile));
}

bool WordTokenizer::contains(std::string_view token) const {
  return ids_.find(token) != ids_.end();
}

std::int32_t WordTokenizer::id(std::string_view token) const {
  const auto it = ids_.find(token);
  if (it == ids_.end()) throw Error("token \"" + printable(token) + "\" is not in the vocabulary");
  return it->second;
}

const std::string& WordTokenizer::token(std::int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= tokens_.size())
    throw Error("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                std::to_string(tokens_.size()) + ")");
  return tokens_[static_cast<std::size_t>(id)];
}

std::string WordTokenizer::serialize() const {
  std::string out;
  for (const auto& token : tokens_) {
    out += token;
    out += '\n';
  }
  return out;
}

WordTokenizer WordTokenizer::parse(std::string_view text, const std::string& source) {
  std::vector<std::string> tokens;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    tokens.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return from_tokens(std::move(tokens), source);
}

void WordTokenizer::save(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(path + ": cannot open for writing");
  out << serialize();
  out.close();
  if (!out) throw Error(path + ": write failed");
}

WordTokenizer WordTokenizer::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open vocabulary file");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw Error(path + ": read failed");
  return parse(buffer.str(), path);
}

}  // namespace strata
