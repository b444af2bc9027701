// Checkpoints: everything a run needs to continue bit-exactly or to generate.
//
// Layout of a run directory DIR (`strata train --out DIR`):
//   DIR/checkpoint/manifest.json   format, training position, RNG state, and the size
//                                  and CRC-32 of every other file (checked on load)
//   DIR/checkpoint/config.yaml     the config the run was started with
//   DIR/checkpoint/vocab.txt       the tokenizer's files (the word tokenizer's vocabulary,
//                                  one token per line; SentencePiece's sentencepiece.model;
//                                  the manifest names the type and files)
//   DIR/checkpoint/model.npz       parameters by name, float32 (np.load reads it)
//   DIR/checkpoint/optimizer.npz   optimizer state by "<parameter>/<slot>"
//   DIR/metrics.csv                one row per epoch
//   DIR/steps.csv                  one row per optimizer step
//   DIR/validation.csv             one row per validation evaluation
//   DIR/best/checkpoint/           the checkpoint of the best validation loss (a run
//                                  directory of its own: `strata generate DIR/best`)
//   DIR/checkpoint/.strata-checkpoint  marks a directory as Strata's (see below)
// A checkpoint is written to a fresh directory and swapped in atomically, so a crash
// at any moment leaves the previous checkpoint or the new one, never a torn one.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "framework/npz.hpp"

namespace strata {

// Where training stands: enough to replay the same shuffles and draws.
struct TrainingPosition {
  std::int64_t step = 0;                // optimizer steps taken in the whole run
  std::size_t phase = 0;                // index of the phase in progress (phases.size(): done)
  std::int64_t epoch = 0;               // epoch in progress within the phase
  std::size_t next_batch = 0;           // first batch of that epoch not yet trained on
  std::string epoch_rng;                // RNG state at the start of the epoch (replays its shuffle)
  std::string rng;                      // RNG state now
  std::vector<std::string> layer_rngs;  // states of the layers' own generators (dropout)
  double epoch_loss_sum = 0;            // partial sums of the epoch in progress
  std::size_t epoch_sequences = 0;
  std::size_t epoch_tokens = 0;
  std::size_t metrics_rows = 0;  // rows of DIR/metrics.csv that belong to this position
  // DIR/steps.csv has `step` rows; DIR/validation.csv this many.
  std::size_t validation_rows = 0;
  // The phase's best validation loss so far (early stopping, DIR/best), at best_step;
  // best_step -1: none yet in this phase. evaluations_since_best counts those not better.
  double best_loss = 0;
  std::int64_t best_step = -1;
  std::int64_t evaluations_since_best = 0;
};

// What a phase was trained on, recorded so that a resumed run can refuse data that
// changed (it would no longer replay the same batches). It is taken of the examples as
// read, not of the file's bytes: a pipe cannot be read a second time, and the examples
// are what training depends on. A corpus phase (tasks/corpus_phase.hpp) records its
// documents as `examples`, and its files' bytes: FNV-1a over each file's bytes then its
// size (text/corpus.hpp); its tokenizer and corpus keys are in the checkpoint already.
struct DataFingerprint {
  std::string phase;
  std::string path;
  std::uint64_t examples = 0;
  std::uint64_t bytes = 0;    // of the examples' text
  std::uint64_t fnv1a64 = 0;  // FNV-1a over the examples, each after its length
  bool operator==(const DataFingerprint&) const = default;
};

DataFingerprint fingerprint_data(const std::string& phase, const std::string& path,
                                 const std::vector<std::string>& examples);

struct Checkpoint {
  std::string config_text;
  std::string config_file;
  // Command-line overrides the run was started with (they are not in config_text).
  std::uint64_t seed = 0;
  std::map<std::string, std::string> data_overrides;
  // The tokenizer (text/tokenizer.hpp): its type and its files by plain name, which
  // must not be one of the checkpoint's own. A manifest without them (older
  // checkpoints) means {type: word, files: [vocab.txt]}.
  std::string tokenizer_type = "word";
  std::map<std::string, std::string> tokenizer_files;
  std::vector<NamedArray> parameters;
  std::vector<NamedArray> optimizer_state;
  std::int64_t optimizer_steps = 0;
  TrainingPosition position;
  std::vector<DataFingerprint> data;  // per phase; empty in checkpoints older than the field
};

std::string checkpoint_directory(const std::string& run_dir);  // DIR/checkpoint

// Removes the "checkpoint.tmp-<pid>" directories of `dir` that a Strata process that no
// longer runs left (a save killed half way): only those that carry Strata's marker file
// (and empty ones, which hold nothing to lose), so a user's file or folder of that name
// is never touched. save_checkpoint and train() call it.
void remove_stale_temporaries(const std::string& dir);

void save_checkpoint(const std::string& run_dir, const Checkpoint& checkpoint);
// Throws Error naming the file for a missing, truncated or corrupted checkpoint, and
// naming the array for a parameter or optimizer state that is not finite.
Checkpoint load_checkpoint(const std::string& run_dir);
// The checkpoint whose files `read(name)` returns ("manifest.json", "model.npz", ...,
// as in DIR/checkpoint/; `read` throws Error for a missing one). `dir` names the files
// in errors. load_checkpoint reads from disk through it; the fuzzer from memory.
Checkpoint parse_checkpoint(const std::function<std::string(const std::string&)>& read,
                            const std::string& dir);

}  // namespace strata
