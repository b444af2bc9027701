#include "text/token_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "framework/errors.hpp"

namespace strata {

namespace {

constexpr char kMagic[8] = {'S', 'T', 'R', 'A', 'T', 'O', 'K', '1'};
constexpr std::size_t kBufferTokens = std::size_t(1) << 16;

void put(unsigned char* at, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) at[i] = static_cast<unsigned char>(value >> (8 * i));
}
std::uint64_t get(const unsigned char* at, int bytes) {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= std::uint64_t(at[i]) << (8 * i);
  return value;
}

void encode_header(const TokenFileHeader& h, unsigned char* out) {
  std::memset(out, 0, kTokenFileHeader);
  std::memcpy(out, kMagic, sizeof kMagic);
  put(out + 8, h.width, 4);
  put(out + 16, h.tokens, 8);
  put(out + 24, h.documents, 8);
  put(out + 32, h.key, 8);
  put(out + 40, h.vocabulary, 8);
}

// Empty when valid, else what is wrong.
std::string decode_header(const unsigned char* in, std::uint64_t file_size, TokenFileHeader& h) {
  if (file_size < kTokenFileHeader || std::memcmp(in, kMagic, sizeof kMagic) != 0)
    return "not a Strata token file";
  h.width = std::uint32_t(get(in + 8, 4));
  h.tokens = get(in + 16, 8);
  h.documents = get(in + 24, 8);
  h.key = get(in + 32, 8);
  h.vocabulary = get(in + 40, 8);
  if (h.width != 2 && h.width != 4)
    return "token width " + std::to_string(h.width) + ", not 2 or 4";
  if (h.tokens > (file_size - kTokenFileHeader) / h.width ||
      file_size != kTokenFileHeader + h.tokens * h.width)
    return "truncated or padded: " + std::to_string(file_size) + " bytes for " +
           std::to_string(h.tokens) + " tokens";
  return {};
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

std::uint32_t token_width(std::uint64_t vocabulary) { return vocabulary <= 65536 ? 2 : 4; }

TokenFileWriter::TokenFileWriter(std::string path, std::uint64_t vocabulary, std::uint64_t key)
    : path_(std::move(path)), temporary_(path_ + ".tmp-" + std::to_string(::getpid())) {
  header_.width = token_width(vocabulary);
  header_.vocabulary = vocabulary;
  header_.key = key;
  file_ = std::fopen(temporary_.c_str(), "wb");
  if (!file_) throw Error(temporary_ + ": cannot write (" + errno_text() + ")");
  unsigned char blank[kTokenFileHeader] = {};
  if (std::fwrite(blank, 1, sizeof blank, file_) != sizeof blank)
    throw Error(temporary_ + ": cannot write (" + errno_text() + ")");
  buffer_.reserve(kBufferTokens * header_.width);
}

TokenFileWriter::~TokenFileWriter() {
  if (file_) {
    std::fclose(file_);
    std::remove(temporary_.c_str());
  }
}

void TokenFileWriter::append(const std::vector<std::int32_t>& ids) {
  for (const std::int32_t id : ids) {
    if (id < 0 || std::uint64_t(id) >= header_.vocabulary)
      throw Error(path_ + ": token id " + std::to_string(id) + " is outside the vocabulary");
    const std::size_t at = buffer_.size();
    buffer_.resize(at + header_.width);
    put(buffer_.data() + at, std::uint64_t(id), int(header_.width));
    if (buffer_.size() >= kBufferTokens * header_.width) flush();
  }
  header_.tokens += ids.size();
}

void TokenFileWriter::end_document(std::int32_t eos_id) {
  append({eos_id});
  ++header_.documents;
}

void TokenFileWriter::flush() {
  if (!buffer_.empty() && std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size())
    throw Error(temporary_ + ": cannot write (" + errno_text() + ")");
  buffer_.clear();
}

void TokenFileWriter::finish() {
  flush();
  unsigned char header[kTokenFileHeader];
  encode_header(header_, header);
  if (std::fseek(file_, 0, SEEK_SET) != 0 ||
      std::fwrite(header, 1, sizeof header, file_) != sizeof header || std::fflush(file_) != 0 ||
      ::fsync(::fileno(file_)) != 0)
    throw Error(temporary_ + ": cannot write (" + errno_text() + ")");
  std::fclose(file_);
  file_ = nullptr;
  if (std::rename(temporary_.c_str(), path_.c_str()) != 0) {
    const std::string why = errno_text();
    std::remove(temporary_.c_str());
    throw Error(path_ + ": cannot move the token file into place (" + why + ")");
  }
}

TokenFile TokenFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot read the token file (" + errno_text() + ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw Error(path + ": cannot read the token file (" + errno_text() + ")");
  }
  TokenFile file;
  file.path_ = path;
  file.mapped_ = std::size_t(st.st_size);
  void* data = file.mapped_ ? ::mmap(nullptr, file.mapped_, PROT_READ, MAP_SHARED, fd, 0) : nullptr;
  ::close(fd);  // the mapping keeps the file
  if (data == MAP_FAILED) throw Error(path + ": cannot map the token file (" + errno_text() + ")");
  file.data_ = static_cast<const unsigned char*>(data);
  if (file.data_) ::madvise(data, file.mapped_, MADV_RANDOM);  // windows, not a scan
  const std::string wrong =
      file.data_ ? decode_header(file.data_, file.mapped_, file.header_) : "empty file";
  if (!wrong.empty()) throw Error(path + ": " + wrong);
  return file;
}

bool read_token_header(const std::string& path, TokenFileHeader& header) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return false;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  unsigned char bytes[kTokenFileHeader] = {};
  const bool read = std::fread(bytes, 1, sizeof bytes, f) == sizeof bytes;
  std::fclose(f);
  return read && decode_header(bytes, size, header).empty();
}

TokenFile::~TokenFile() { unmap(); }

TokenFile::TokenFile(TokenFile&& other) noexcept { *this = std::move(other); }

TokenFile& TokenFile::operator=(TokenFile&& other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    data_ = other.data_;
    mapped_ = other.mapped_;
    header_ = other.header_;
    other.data_ = nullptr;
    other.mapped_ = 0;
  }
  return *this;
}

void TokenFile::unmap() {
  if (data_) ::munmap(const_cast<unsigned char*>(data_), mapped_);
  data_ = nullptr;
}

std::int32_t TokenFile::at(std::uint64_t i) const {
  if (i >= header_.tokens)
    throw Error(path_ + ": token " + std::to_string(i) + " is past the end (" +
                std::to_string(header_.tokens) + ")");
  return std::int32_t(get(data_ + kTokenFileHeader + i * header_.width, int(header_.width)));
}

void TokenFile::read(std::uint64_t start, std::size_t n, std::vector<std::int32_t>& out) const {
  if (start > header_.tokens || n > header_.tokens - start)
    throw Error(path_ + ": tokens [" + std::to_string(start) + ", " + std::to_string(start + n) +
                ") are past the end (" + std::to_string(header_.tokens) + ")");
  out.resize(n);
  const unsigned char* p = data_ + kTokenFileHeader + start * header_.width;
  if (header_.width == 2)
    for (std::size_t i = 0; i < n; ++i) out[i] = std::int32_t(p[2 * i] | (p[2 * i + 1] << 8));
  else
    for (std::size_t i = 0; i < n; ++i) out[i] = std::int32_t(get(p + 4 * i, 4));
}

void TokenFile::release(std::uint64_t start, std::size_t n) const {
  const std::size_t page = std::size_t(::sysconf(_SC_PAGESIZE));
  const std::size_t begin = kTokenFileHeader + start * header_.width;
  const std::size_t end = std::min(mapped_, begin + n * header_.width);
  const std::size_t first = (begin + page - 1) / page * page;  // whole pages inside only
  const std::size_t last = end / page * page;
  if (last > first)
    ::madvise(const_cast<unsigned char*>(data_) + first, last - first, MADV_DONTNEED);
}

}  // namespace strata
