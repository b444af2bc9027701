#include "text/dataset.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "framework/errors.hpp"
#include "framework/text.hpp"

namespace strata {
namespace {

std::string hex_byte(char c) {
  static const char* digits = "0123456789abcdef";
  const auto u = static_cast<unsigned char>(c);
  return std::string("0x") + digits[u >> 4] + digits[u & 15];
}

bool blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x80 && std::isspace(u);
  });
}

// nlohmann reports a byte offset (one past the offending character); editors want
// line:column of that character.
std::string position(std::string_view text, std::size_t byte) {
  const std::size_t at = std::min(byte == 0 ? 0 : byte - 1, text.size());
  std::size_t line = 1, column = 1;
  for (std::size_t i = 0; i < at; ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return std::to_string(line) + ":" + std::to_string(column);
}

// nlohmann's messages start with "[json.exception.parse_error.101] parse error at line
// 1, column 5: "; keep only the part after that, the position is ours.
std::string parse_detail(const std::string& what) {
  const std::size_t colon = what.find(": ");
  return colon == std::string::npos ? what : what.substr(colon + 2);
}

std::string a_or_an(const nlohmann::json& value) {
  const std::string name = value.type_name();
  const bool vowel = !name.empty() && std::string_view("aeiou").find(name[0]) != std::string::npos;
  return (vowel ? "an " : "a ") + name;
}

std::vector<std::string> parse_json(const std::string& path, const std::string& text) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(path + ":" + position(text, e.byte) +
                ": malformed JSON: " + parse_detail(e.what()));
  }
  if (!doc.is_array())
    throw Error(path + ": expected a JSON array of strings, found " + a_or_an(doc));
  std::vector<std::string> texts;
  texts.reserve(doc.size());
  for (std::size_t i = 0; i < doc.size(); ++i) {
    const auto& element = doc[i];
    if (!element.is_string())
      throw Error(path + ": element " + std::to_string(i) + " is " + a_or_an(element) +
                  ", expected a string");
    std::string value = element.get<std::string>();
    if (blank(value)) throw Error(path + ": element " + std::to_string(i) + " is an empty string");
    texts.push_back(std::move(value));
  }
  return texts;
}

// Text files are checked here, line by line, so that an error names the file and the
// line (JSON strings are checked by the JSON parser).
std::vector<std::string> parse_lines(const std::string& path, const std::string& text) {
  std::vector<std::string> texts;
  std::size_t start = 0;
  for (std::size_t number = 1; start < text.size(); ++number) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    if (const std::size_t bad = invalid_utf8_at(line); bad != std::string_view::npos)
      throw Error(path + ":" + std::to_string(number) + ":" + std::to_string(bad + 1) +
                  ": invalid UTF-8 (byte " + hex_byte(line[bad]) +
                  "): data files must be UTF-8 text");
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!blank(line)) texts.emplace_back(line);
    start = end + 1;
  }
  return texts;
}

}  // namespace

DataFormat detect_format(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".json" ? DataFormat::kJson : DataFormat::kText;
}

DataFormat parse_data_format(std::string_view name) {
  if (name == "auto") return DataFormat::kAuto;
  if (name == "json") return DataFormat::kJson;
  if (name == "text") return DataFormat::kText;
  throw Error("unknown data format \"" + std::string(name) + "\" (expected auto, json or text)");
}

std::string_view to_string(DataFormat format) {
  switch (format) {
    case DataFormat::kAuto:
      return "auto";
    case DataFormat::kJson:
      return "json";
    case DataFormat::kText:
      return "text";
  }
  return "?";
}

std::string read_data_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (status.type() == fs::file_type::not_found) throw Error(path + ": no such file");
  if (status.type() == fs::file_type::directory) throw Error(path + ": is a directory");
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    throw Error(path + ": cannot read (" + (err ? std::strerror(err) : "open failed") + ")");
  }
  // In chunks up to one byte past the limit: a pipe has no size to ask for first, and
  // an endless one (/dev/zero) must stop.
  std::string text;
  std::vector<char> chunk(std::size_t(1) << 20);
  while (in && text.size() <= kMaxDataBytes) {
    in.read(chunk.data(), std::streamsize(chunk.size()));
    text.append(chunk.data(), std::size_t(in.gcount()));
  }
  if (in.bad()) throw Error(path + ": cannot read (I/O error)");
  if (text.size() > kMaxDataBytes)
    throw Error(path + ": larger than " + std::to_string(kMaxDataBytes >> 20) + " MiB (" +
                std::to_string(kMaxDataBytes) + " bytes), the most a data file may hold");
  return text;
}

std::vector<std::string> parse_texts(const std::string& path, const std::string& text,
                                     DataFormat format) {
  if (format == DataFormat::kAuto) format = detect_format(path);
  std::vector<std::string> texts =
      format == DataFormat::kJson ? parse_json(path, text) : parse_lines(path, text);
  if (texts.empty()) throw Error(path + ": no examples");
  return texts;
}

std::vector<std::string> load_texts(const std::string& path, DataFormat format) {
  return parse_texts(path, read_data_file(path), format);
}

}  // namespace strata
