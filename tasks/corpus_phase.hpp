// A language-model phase with `format: corpus` (docs/data.md): its documents tokenised
// once into a token file (text/token_file.hpp) in the run's cache, cut into windows of
// max_seq_len + 1 tokens, batched window by window from the memory-mapped file.
//
// Cache: DIR/cache/<phase>.tokens, keyed by a hash of the data's bytes (read in a first
// pass), the tokenizer's type and files, and the corpus options; a file with the key is
// reused, any other is rebuilt (written atomically). Without a run directory the cache
// is a directory of the process's own under the system temp dir, removed at exit. Over
// MPI the ranks but 0 only read the run directory's cache (prepare_corpus_phase).
//
// A corpus path that is not a regular file or directory (a pipe, /dev/stdin, "-") is
// copied once, as it streams, into an unlinked temporary file of the process, which
// every later pass reads (the tokenizer's training, the hash, the tokenisation).
//
// Windows: starts 0, stride, 2 stride, ... while a whole window fits, plus one ending
// at the last token when those miss the tail; a corpus shorter than a window is one
// window of all its tokens. Documents are joined with </s> after each, so windows run
// across document boundaries as in GPT pre-training; no document is too long.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "tasks/batch.hpp"
#include "text/corpus.hpp"
#include "text/token_file.hpp"
#include "text/tokenizer.hpp"
#include "training/checkpoint.hpp"
#include "training/run_config.hpp"

namespace strata {

// The corpus options of a phase, with streams replaced by their process copies.
CorpusOptions corpus_options(const PhaseConfig& phase);

// The window starts over `tokens` tokens (see above); `window` is clamped to tokens.
std::vector<std::uint64_t> window_starts(std::uint64_t tokens, std::uint64_t window,
                                         std::uint64_t stride);

struct CorpusPhase {
  TokenFile tokens;
  std::vector<std::uint64_t> starts;
  std::size_t window = 0;  // tokens per window: max_seq_len + 1, or all when fewer
  DataFingerprint fingerprint;
  bool reused = false;  // the cache's file was used as it was
};

// Tokenises `phase` into `cache_dir` (or reuses the file there), for a model of
// `max_seq_len`. A non-empty `read_only_cache` (another process's cache, over MPI rank
// 0's) is looked in first: its file is used when it holds these tokens, and nothing is
// ever written there. Errors name the phase's `data:` position.
CorpusPhase prepare_corpus_phase(const PhaseConfig& phase, const Tokenizer& tokenizer,
                                 const std::string& cache_dir, std::size_t max_seq_len,
                                 const std::string& read_only_cache = "");

// The batch of windows order[first, first + rows): inputs and targets, every row
// the same length.
Batch window_batch(const CorpusPhase& corpus, const std::vector<std::uint64_t>& order,
                   std::size_t first, std::size_t rows);

// DIR/cache, or (empty `run_dir`) the process's own temporary cache.
std::string corpus_cache_directory(const std::string& run_dir);

}  // namespace strata
