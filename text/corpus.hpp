// Plain-text corpora: files, directories of files, or lists of both, read as a stream
// of documents (the language model's `format: corpus`, docs/data.md).
//
// A document is, by `document:`,
//   file       a whole file;
//   paragraph  lines up to a blank (whitespace-only) line;
//   record     lines up to a line that is just `separator` ("%" in fortune files).
// A document keeps its bytes as in the file, line ends included; separator and blank
// separating lines are not part of one, and a document of whitespace only is skipped.
//
// A directory is read recursively, in byte order of the paths, taking the files whose
// name matches `include` (a shell glob, fnmatch(3); default "*"), and skipping: names
// that start with '.', a symbolic link to a file already taken (fortune's NAME.u8 ->
// NAME), and binary files (a NUL byte in the first 4096 bytes: fortune's NAME.dat).
// A file named directly is never skipped: a binary one is an error.
//
// Reading streams: a document reaches its reader as pieces of at most kMaxPiece bytes,
// cut after a line end when the document has one, else after a space, else at a
// character boundary, so a corpus of any size, and a single line of any length, is read
// in bounded memory. The pieces of a document concatenate to it exactly.
//
// Errors (strata::Error): "<path>: no such file or directory", "<dir>: no file matches
// include \"*.txt\"", "<path>: binary file (a NUL byte at byte 12), not text",
// "<path>:<line>:<col>: invalid UTF-8 (byte 0xff): corpus files must be UTF-8 text".
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "text/tokenizer.hpp"

namespace strata {

enum class DocumentKind { file, paragraph, record };
// "file" | "paragraph" | "record"; throws strata::Error otherwise.
DocumentKind parse_document_kind(std::string_view name);

struct CorpusOptions {
  std::vector<std::string> paths;  // files and directories, read in this order
  DocumentKind document = DocumentKind::file;
  std::string separator = "%";  // the record separator line (document: record)
  std::string include = "*";    // file names taken from directories
};

inline constexpr std::size_t kMaxPiece = std::size_t(1) << 20;

// The files read, in order (directories expanded as above).
std::vector<std::string> corpus_files(const CorpusOptions& options);

// What was read: what a checkpoint's data fingerprint records.
struct CorpusStats {
  std::uint64_t files = 0;
  std::uint64_t documents = 0;
  std::uint64_t bytes = 0;                     // of the files
  std::uint64_t fnv1a64 = 0xcbf29ce484222325;  // FNV-1a over each file's bytes, then its size
};

struct CorpusReader {
  std::function<void(std::string_view)> text;  // a piece of the current document
  std::function<void()> end_document;          // after the last piece of each
};

// Reads `files` (from corpus_files) as documents; `reader` may be empty (only stats).
CorpusStats read_corpus(const std::vector<std::string>& files, const CorpusOptions& options,
                        const CorpusReader& reader);

// The corpus as a tokenizer's TextSource (its documents' pieces, in order).
class CorpusSource final : public TextSource {
 public:
  CorpusSource(std::vector<std::string> files, CorpusOptions options);
  void for_each(const std::function<void(std::string_view)>& visit) const override;
  std::uint64_t bytes() const override { return bytes_; }

 private:
  std::vector<std::string> files_;
  CorpusOptions options_;
  std::uint64_t bytes_ = 0;
};

}  // namespace strata
