// Token files: a corpus tokenised once, memory-mapped and read window by window
// (docs/data.md has the format for readers outside Strata).
//
// Layout, little-endian:
//   bytes 0-7    magic "STRATOK1"
//   bytes 8-11   uint32 width: bytes per token, 2 (uint16) when the vocabulary has at
//                most 65536 ids, else 4 (uint32)
//   bytes 12-15  uint32 0
//   bytes 16-23  uint64 tokens: how many ids follow the header
//   bytes 24-31  uint64 documents
//   bytes 32-39  uint64 key: what the ids were made from (the cache's check: a hash of
//                the data's bytes, the tokenizer and the corpus options)
//   bytes 40-47  uint64 vocabulary size
//   bytes 48-63  0
//   bytes 64-    the ids, `width` bytes each
// The ids are every document's tokens followed by the end-of-document id (</s>).
//
// A TokenFileWriter writes to PATH.tmp-<pid> and renames it over PATH when finished
// (atomic: a crash leaves the old file or none, never a torn one); an unfinished
// writer removes its temporary file.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace strata {

inline constexpr std::size_t kTokenFileHeader = 64;

struct TokenFileHeader {
  std::uint32_t width = 2;
  std::uint64_t tokens = 0;
  std::uint64_t documents = 0;
  std::uint64_t key = 0;
  std::uint64_t vocabulary = 0;
};

// 2 for a vocabulary of at most 65536 ids, else 4.
std::uint32_t token_width(std::uint64_t vocabulary);

class TokenFileWriter {
 public:
  TokenFileWriter(std::string path, std::uint64_t vocabulary, std::uint64_t key);
  ~TokenFileWriter();
  TokenFileWriter(const TokenFileWriter&) = delete;
  TokenFileWriter& operator=(const TokenFileWriter&) = delete;

  void append(const std::vector<std::int32_t>& ids);
  void end_document(std::int32_t eos_id);
  std::uint64_t tokens() const { return header_.tokens; }
  // Writes the header, syncs and renames the file into place.
  void finish();

 private:
  void flush();

  std::string path_, temporary_;
  std::FILE* file_ = nullptr;
  TokenFileHeader header_;
  std::vector<unsigned char> buffer_;
};

// A token file, memory-mapped read-only.
class TokenFile {
 public:
  // Throws strata::Error "<path>: ..." for a missing, short or malformed file.
  static TokenFile open(const std::string& path);
  TokenFile() = default;
  ~TokenFile();
  TokenFile(TokenFile&& other) noexcept;
  TokenFile& operator=(TokenFile&& other) noexcept;

  const TokenFileHeader& header() const { return header_; }
  std::uint64_t size() const { return header_.tokens; }
  std::int32_t at(std::uint64_t i) const;
  // ids[start, start + n) into `out` (resized to n); throws past the end.
  void read(std::uint64_t start, std::size_t n, std::vector<std::int32_t>& out) const;
  // Lets the kernel drop the mapped pages of [start, start + n) from this process's
  // resident set (they stay in the page cache): memory stays bounded by the windows in
  // use, not the file.
  void release(std::uint64_t start, std::size_t n) const;

 private:
  void unmap();

  std::string path_;
  const unsigned char* data_ = nullptr;  // the whole mapping
  std::size_t mapped_ = 0;
  TokenFileHeader header_;
};

// Only the header (for the cache's check); nullopt-like: returns false when the file is
// missing or not a valid token file.
bool read_token_header(const std::string& path, TokenFileHeader& header);

}  // namespace strata
