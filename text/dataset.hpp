// Training texts from a file.
//
// Formats:
//   json  a JSON array of strings, RustGPT's format:
//           ["The sun is a star </s>", "User: ...? Assistant: ... </s>"]
//         Every element must be a string with at least one non-whitespace character.
//   text  one example per line; blank (whitespace-only) lines are skipped and a
//         trailing '\r' is removed, so CRLF files load the same.
//   auto  json when the path ends in ".json" (any case), else text.
//
// Errors are strata::Error whose message starts with the path:
//   "<path>: no such file" / "<path>: is a directory" / "<path>: cannot read (...)"
//   "<path>: larger than 256 MiB (268435456 bytes), the most a data file may hold"
//   "<path>:<line>:<col>: invalid UTF-8 (byte 0xff): ..."  (text format; in JSON the
//                                                      parser's "malformed JSON" says it)
//   "<path>:<line>:<col>: malformed JSON: ..."        (1-based; where the parser gave
//                                                      up: the last character it read)
//   "<path>: expected a JSON array of strings, found an object"
//   "<path>: element 3 is a number, expected a string" (0-based index)
//   "<path>: element 3 is an empty string"
//   "<path>: no examples"
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace strata {

enum class DataFormat { kAuto, kJson, kText };

// kJson or kText for `path` by its extension.
DataFormat detect_format(const std::string& path);

// "auto" | "json" | "text" (config spelling); throws strata::Error otherwise.
DataFormat parse_data_format(std::string_view name);
std::string_view to_string(DataFormat format);

// The most a data file may hold. Read whole into memory: a pipe or /dev/stdin can be
// read only once, and an endless one must stop.
inline constexpr std::size_t kMaxDataBytes = std::size_t(256) << 20;

// The bytes of `path`, read once in chunks (pipes work); Errors as above.
std::string read_data_file(const std::string& path);
// The examples in `text`, the contents of `path` (named in errors, and its extension
// decides kAuto).
std::vector<std::string> parse_texts(const std::string& path, const std::string& text,
                                     DataFormat format = DataFormat::kAuto);
// read_data_file + parse_texts.
std::vector<std::string> load_texts(const std::string& path, DataFormat format = DataFormat::kAuto);

}  // namespace strata
