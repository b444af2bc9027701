#include "tasks/corpus_phase.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>

#include "framework/errors.hpp"
#include "framework/files.hpp"
#include "framework/loss.hpp"

namespace strata {

namespace fs = std::filesystem;

namespace {

// The process's copies of streamed corpus paths (path as given -> /proc/self/fd/N of an
// unlinked file), made once: a pipe can be read only once.
std::map<std::string, std::string>& spooled() {
  static std::map<std::string, std::string> copies;
  return copies;
}

std::string spool(const std::string& path) {
  if (auto it = spooled().find(path); it != spooled().end()) return it->second;
  std::string name = (fs::temp_directory_path() / "strata-stream-XXXXXX").string();
  const int fd = ::mkstemp(name.data());
  if (fd < 0) throw Error(path + ": cannot copy the stream (" + std::strerror(errno) + ")");
  ::unlink(name.c_str());  // the descriptor keeps it until the process ends
  const int in = ::open(path == "-" ? "/dev/stdin" : path.c_str(), O_RDONLY);
  if (in < 0) throw Error(path + ": cannot read (" + std::strerror(errno) + ")");
  std::vector<char> block(std::size_t(1) << 20);
  for (;;) {
    const ssize_t n = ::read(in, block.data(), block.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(path + ": cannot read (" + std::strerror(errno) + ")");
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = ::write(fd, block.data() + done, std::size_t(n - done));
      if (w < 0) throw Error(path + ": cannot copy the stream (" + std::strerror(errno) + ")");
      done += w;
    }
  }
  if (in != STDIN_FILENO) ::close(in);
  return spooled()[path] = "/proc/self/fd/" + std::to_string(fd);
}

bool is_stream(const std::string& path) {
  if (path == "-") return true;
  std::error_code ec;
  const fs::file_type type = fs::status(path, ec).type();
  return type != fs::file_type::regular && type != fs::file_type::directory &&
         type != fs::file_type::not_found;
}

void mix(std::uint64_t& h, std::string_view bytes) {
  const std::uint64_t size = bytes.size();
  for (std::size_t i = 0; i < sizeof size; ++i) {
    h ^= (size >> (8 * i)) & 0xff;
    h *= 0x100000001b3ull;
  }
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
}

// What the token file is made from: the data, the tokenizer and the corpus options.
std::uint64_t cache_key(const CorpusStats& stats, const PhaseConfig& phase,
                        const Tokenizer& tokenizer) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  mix(h, "strata corpus 1");  // the reading rules (piece size, document splitting)
  mix(h, std::to_string(stats.fnv1a64) + " " + std::to_string(stats.bytes));
  mix(h, phase.document);
  mix(h, phase.separator);
  mix(h, phase.include);
  mix(h, tokenizer.type());
  for (const auto& [name, bytes] : tokenizer.files()) {
    mix(h, name);
    mix(h, bytes);
  }
  return h;
}

// The process's temporary cache, removed when the process ends normally.
struct TemporaryCache {
  std::string path;
  TemporaryCache() {
    std::string pattern = (fs::temp_directory_path() / "strata-cache-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr)
      throw Error("cannot make a temporary cache directory (" + std::string(std::strerror(errno)) +
                  ")");
    path = pattern;
  }
  ~TemporaryCache() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// Token files left half-written by a process that no longer runs (killed while
// tokenising): "<name>.tmp-<pid>".
void remove_stale_token_files(const std::string& cache_dir, const std::string& name) {
  std::error_code ec;
  const std::string prefix = name + ".tmp-";
  for (const auto& entry : fs::directory_iterator(cache_dir, ec)) {
    const std::string file = entry.path().filename().string();
    if (!file.starts_with(prefix)) continue;
    const std::string digits = file.substr(prefix.size());
    if (digits.empty() || digits.size() > 9 ||
        digits.find_first_not_of("0123456789") != std::string::npos)
      continue;
    const pid_t pid = pid_t(std::stol(digits));
    if (pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH) fs::remove(entry.path(), ec);
  }
}

void tokenize(const std::vector<std::string>& files, const CorpusOptions& options,
              const Tokenizer& tokenizer, TokenFileWriter& writer, CorpusStats& stats) {
  stats = read_corpus(files, options,
                      {[&](std::string_view text) { writer.append(tokenizer.encode(text).ids); },
                       [&] { writer.end_document(tokenizer.eos_id()); }});
}

// Opens dir/name into `out` if it holds the tokens of `key` (a token file is written
// atomically: whole when it is there).
bool open_with_key(const std::string& dir, const std::string& name, std::uint64_t key,
                   TokenFile& out) {
  const std::string path = (fs::path(dir) / name).string();
  TokenFileHeader header;
  if (!read_token_header(path, header) || header.key != key) return false;
  out = TokenFile::open(path);
  return out.header().key == key;  // not replaced in between
}

}  // namespace

CorpusOptions corpus_options(const PhaseConfig& phase) {
  CorpusOptions options;
  for (const std::string& path : phase.sources)
    options.paths.push_back(is_stream(path) ? spool(path) : path);
  options.document = parse_document_kind(phase.document);
  options.separator = phase.separator;
  options.include = phase.include;
  return options;
}

std::vector<std::uint64_t> window_starts(std::uint64_t tokens, std::uint64_t window,
                                         std::uint64_t stride) {
  if (tokens < 2 || window < 2 || stride == 0) return {};
  window = std::min(window, tokens);
  std::vector<std::uint64_t> starts;
  for (std::uint64_t s = 0; s + window <= tokens; s += stride) starts.push_back(s);
  if (starts.back() + window < tokens) starts.push_back(tokens - window);  // the tail
  return starts;
}

std::string corpus_cache_directory(const std::string& run_dir) {
  if (!run_dir.empty()) return (fs::path(run_dir) / "cache").string();
  static TemporaryCache cache;
  return cache.path;
}

CorpusPhase prepare_corpus_phase(const PhaseConfig& phase, const Tokenizer& tokenizer,
                                 const std::string& cache_dir, std::size_t max_seq_len,
                                 const std::string& read_only_cache) {
  const std::string where =
      phase.data_mark.to_string() + ": training.phases \"" + phase.name + "\": ";
  try {
    const CorpusOptions options = corpus_options(phase);
    const std::vector<std::string> files = corpus_files(options);
    const CorpusStats first = read_corpus(files, options, {});
    const std::uint64_t key = cache_key(first, phase, tokenizer);
    CorpusPhase corpus;
    const std::string name = phase.name + ".tokens";
    corpus.reused =
        !read_only_cache.empty() && open_with_key(read_only_cache, name, key, corpus.tokens);
    if (!corpus.reused) {
      make_directories(cache_dir);
      corpus.reused = open_with_key(cache_dir, name, key, corpus.tokens);
    }
    if (!corpus.reused) {
      remove_stale_token_files(cache_dir, name);
      const std::string path = (fs::path(cache_dir) / name).string();
      TokenFileWriter writer(path, tokenizer.size(), key);
      CorpusStats stats;
      tokenize(files, options, tokenizer, writer, stats);
      if (stats.fnv1a64 != first.fnv1a64 || stats.bytes != first.bytes)
        throw Error(phase.data + ": changed while it was read");
      writer.finish();
      corpus.tokens = TokenFile::open(path);
    }
    const std::uint64_t stride = phase.stride > 0 ? std::uint64_t(phase.stride) : max_seq_len;
    corpus.starts = window_starts(corpus.tokens.size(), max_seq_len + 1, stride);
    if (corpus.starts.empty())
      throw Error(phase.data + ": " + std::to_string(corpus.tokens.size()) +
                  " tokens: nothing to learn (a window needs two)");
    corpus.window = std::size_t(std::min<std::uint64_t>(max_seq_len + 1, corpus.tokens.size()));
    corpus.fingerprint = {phase.name, phase.data, first.documents, first.bytes, first.fnv1a64};
    return corpus;
  } catch (const ConfigError&) {
    throw;
  } catch (const Error& e) {
    throw Error(where + e.what());
  }
}

Batch window_batch(const CorpusPhase& corpus, const std::vector<std::uint64_t>& order,
                   std::size_t first, std::size_t rows) {
  Batch b;
  b.batch = rows;
  b.length = corpus.window - 1;
  b.inputs.resize(rows * b.length);
  b.targets.resize(rows * b.length);
  std::vector<std::int32_t> window;
  for (std::size_t r = 0; r < rows; ++r) {
    const std::uint64_t start = corpus.starts[order[first + r]];
    corpus.tokens.read(start, corpus.window, window);
    corpus.tokens.release(start, corpus.window);
    std::copy(window.begin(), window.end() - 1, b.inputs.begin() + long(r * b.length));
    std::copy(window.begin() + 1, window.end(), b.targets.begin() + long(r * b.length));
  }
  return b;
}

}  // namespace strata
