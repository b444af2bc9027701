#include "text/corpus.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "framework/errors.hpp"
#include "framework/text.hpp"

namespace strata {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kBinaryProbe = 4096;

std::string hex_byte(unsigned char u) {
  static const char* digits = "0123456789abcdef";
  return std::string("0x") + digits[u >> 4] + digits[u & 15];
}

// The offset of a NUL byte in the first kBinaryProbe bytes, or npos.
std::size_t nul_at(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string head(kBinaryProbe, '\0');
  in.read(head.data(), std::streamsize(head.size()));
  head.resize(std::size_t(in.gcount()));
  return head.find('\0');
}

void add_directory(const fs::path& dir, const CorpusOptions& options,
                   std::vector<std::string>& files, std::set<fs::path>& taken) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.starts_with(".")) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec) && ::fnmatch(options.include.c_str(), name.c_str(), 0) == 0)
      found.push_back(it->path());
  }
  if (ec) throw Error(dir.string() + ": cannot read the directory (" + ec.message() + ")");
  std::sort(found.begin(), found.end());
  // Regular files first, so that of a file and a link to it, the link is skipped.
  std::set<fs::path> chosen;
  for (const bool links : {false, true})
    for (const fs::path& path : found) {
      if (fs::is_symlink(path, ec) != links) continue;
      const fs::path real = fs::canonical(path, ec);
      if (ec || taken.count(real) || nul_at(path.string()) != std::string::npos) continue;
      taken.insert(real);
      chosen.insert(path);
    }
  for (const fs::path& path : found)
    if (chosen.count(path)) files.push_back(path.string());
  const std::size_t added = chosen.size();
  if (added == 0)
    throw Error(dir.string() + ": no text file matches include \"" + options.include + "\"");
}

// A document being read: its pending text, flushed as pieces.
class DocumentStream {
 public:
  explicit DocumentStream(const CorpusReader& reader, CorpusStats& stats)
      : reader_(reader), stats_(stats) {}

  void add(std::string_view text) {
    if (text.find_first_not_of(" \t\r\n\f\v") != std::string_view::npos) nonblank_ = true;
    pending_.append(text);
    while (pending_.size() >= kMaxPiece) flush(cut_at(pending_));
  }
  void end() {
    if (nonblank_) {
      if (!pending_.empty()) flush(pending_.size());
      ++stats_.documents;
      if (reader_.end_document) reader_.end_document();
    }
    pending_.clear();
    nonblank_ = false;
  }

 private:
  // After the last line end within kMaxPiece, else after the last space, else at a
  // character boundary.
  static std::size_t cut_at(const std::string& s) {
    const std::string_view head(s.data(), kMaxPiece);
    if (const std::size_t nl = head.rfind('\n'); nl != std::string_view::npos) return nl + 1;
    if (const std::size_t sp = head.rfind(' '); sp != std::string_view::npos) return sp + 1;
    std::size_t cut = kMaxPiece;
    while (cut > 1 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    return cut;
  }
  void flush(std::size_t n) {
    if (reader_.text) reader_.text(std::string_view(pending_.data(), n));
    pending_.erase(0, n);
  }

  const CorpusReader& reader_;
  CorpusStats& stats_;
  std::string pending_;
  bool nonblank_ = false;
};

bool is_blank(std::string_view line) {
  return line.find_first_not_of(" \t\r\n\f\v") == std::string_view::npos;
}

std::string_view without_line_end(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// One line (with its '\n', if any) of a file, in document terms.
void take_line(std::string_view line, const CorpusOptions& options, DocumentStream& doc) {
  switch (options.document) {
    case DocumentKind::file:
      doc.add(line);
      break;
    case DocumentKind::paragraph:
      if (is_blank(line))
        doc.end();
      else
        doc.add(line);
      break;
    case DocumentKind::record:
      if (without_line_end(line) == options.separator)
        doc.end();
      else
        doc.add(line);
      break;
  }
}

class FileReader {
 public:
  FileReader(const std::string& path, const CorpusOptions& options, DocumentStream& doc,
             CorpusStats& stats)
      : path_(path), options_(options), doc_(doc), stats_(stats) {}

  void read() {
    errno = 0;
    std::ifstream in(path_ == "-" ? "/dev/stdin" : path_, std::ios::binary);
    if (!in) throw Error(path_ + ": cannot read (" + std::strerror(errno ? errno : EIO) + ")");
    std::vector<char> block(kMaxPiece);
    std::uint64_t size = 0;
    while (in) {
      in.read(block.data(), std::streamsize(block.size()));
      const std::size_t n = std::size_t(in.gcount());
      if (n == 0) break;
      if (const std::size_t nul = std::string_view(block.data(), n).find('\0');
          nul != std::string_view::npos && size + nul < kBinaryProbe)
        throw Error(path_ + ": binary file (a NUL byte at byte " + std::to_string(size + nul) +
                    "), not text");
      mix(block.data(), n);
      size += n;
      feed(std::string_view(block.data(), n));
    }
    if (in.bad()) throw Error(path_ + ": cannot read (I/O error)");
    if (!line_.empty()) finish_line();
    mix(reinterpret_cast<const char*>(&size), sizeof size);  // little-endian on x86-64
    stats_.bytes += size;
    ++stats_.files;
  }

 private:
  void mix(const char* bytes, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      stats_.fnv1a64 ^= static_cast<unsigned char>(bytes[i]);
      stats_.fnv1a64 *= 0x100000001b3ull;
    }
  }
  void feed(std::string_view data) {
    while (!data.empty()) {
      const std::size_t nl = data.find('\n');
      const std::size_t take = nl == std::string_view::npos ? data.size() : nl + 1;
      line_.append(data.substr(0, take));
      data.remove_prefix(take);
      if (nl != std::string_view::npos)
        finish_line();
      else if (line_.size() >= kMaxPiece)
        pass_long_line();
    }
  }
  // A line longer than a piece goes on as part of the document (it cannot be a
  // separator or blank line).
  void pass_long_line() {
    // Up to the start of the last character, which may be incomplete.
    std::size_t cut = line_.size() - 1;
    while (cut > 0 && (static_cast<unsigned char>(line_[cut]) & 0xC0) == 0x80) --cut;
    if (cut == 0) cut = line_.size();
    check(std::string_view(line_.data(), cut));
    doc_.add(std::string_view(line_.data(), cut));
    column_ += cut;
    line_.erase(0, cut);
  }
  void finish_line() {
    check(line_);
    take_line(line_, options_, doc_);
    line_.clear();
    column_ = 0;
    ++line_number_;
  }
  void check(std::string_view text) const {
    if (const std::size_t bad = invalid_utf8_at(text); bad != std::string_view::npos)
      throw Error(path_ + ":" + std::to_string(line_number_) + ":" +
                  std::to_string(column_ + bad + 1) + ": invalid UTF-8 (byte " +
                  hex_byte(static_cast<unsigned char>(text[bad])) +
                  "): corpus files must be UTF-8 text");
  }

  const std::string& path_;
  const CorpusOptions& options_;
  DocumentStream& doc_;
  CorpusStats& stats_;
  std::string line_;
  std::uint64_t line_number_ = 1, column_ = 0;
};

}  // namespace

DocumentKind parse_document_kind(std::string_view name) {
  if (name == "file") return DocumentKind::file;
  if (name == "paragraph") return DocumentKind::paragraph;
  if (name == "record") return DocumentKind::record;
  throw Error("unknown document kind \"" + std::string(name) +
              "\" (expected file, paragraph or record)");
}

std::vector<std::string> corpus_files(const CorpusOptions& options) {
  std::vector<std::string> files;
  std::set<fs::path> taken;
  for (const std::string& path : options.paths) {
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    if (status.type() == fs::file_type::not_found)
      throw Error(path + ": no such file or directory");
    if (status.type() == fs::file_type::directory) {
      add_directory(path, options, files, taken);
      continue;
    }
    if (status.type() == fs::file_type::regular) {
      if (const std::size_t nul = nul_at(path); nul != std::string::npos)
        throw Error(path + ": binary file (a NUL byte at byte " + std::to_string(nul) +
                    "), not text");
      taken.insert(fs::canonical(path, ec));
    }
    files.push_back(path);
  }
  return files;
}

CorpusStats read_corpus(const std::vector<std::string>& files, const CorpusOptions& options,
                        const CorpusReader& reader) {
  CorpusStats stats;
  for (const std::string& path : files) {
    DocumentStream doc(reader, stats);
    FileReader(path, options, doc, stats).read();
    doc.end();  // a file ends its last document
  }
  return stats;
}

CorpusSource::CorpusSource(std::vector<std::string> files, CorpusOptions options)
    : files_(std::move(files)), options_(std::move(options)) {
  std::error_code ec;
  for (const std::string& path : files_) {
    const auto size = fs::file_size(path, ec);
    if (!ec) bytes_ += size;
  }
}

void CorpusSource::for_each(const std::function<void(std::string_view)>& visit) const {
  read_corpus(files_, options_, {visit, {}});
}

}  // namespace strata
