// A run's whole configuration file, validated before any work:
//
//   seed: 42                  # the one seed: init, shuffling, dropout, sampling
//   threads: 1
//   plugins: []               # layer libraries (docs/writing-a-layer.md); paths relative
//                             # to the working directory, loaded before the model
//   task: {type: language_modeling}  # or classification (tasks/classification.hpp)
//   model: {...}              # framework/model.hpp
//   optimizer: {type: Adam, lr: 5.0e-4, clip_norm: 5.0, ...}
//   tokenizer: {type: word}   # text/tokenizer.hpp; validated when built
//   training:
//     checkpoint_every: 0     # optimizer steps between checkpoints (0: end of each phase)
//     eval_every: 0           # steps between validation evaluations (0: epoch ends only)
//     patience: 0             # evaluations without a better validation loss end a phase
//     phases:
//       - {name: pretrain, data: data/pretraining.json, epochs: 100, batch: 1, lr: 5.0e-4}
//       - {name: instruct, data: data/chat.json, epochs: 100, batch: 1, lr: 1.0e-4,
//          schedule: {type: warmup_cosine, warmup: 100, min_lr: 1.0e-5}, shuffle: true,
//          accumulate: 1,            # batches per optimizer step
//          validation: FILE, or validation_fraction: 0.05}  # held out by the seed
//   generation: {max_tokens: 80, temperature: 0, top_k: 0, top_p: 1.0, prompts: [...],
//                every: 0}   # steps between greedy samples printed while training
//
// The vocabulary is built from every phase's data. Data paths are relative to the
// working directory and can be replaced per phase (`--data instruct=PATH`).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "framework/config.hpp"
#include "optimizers/schedule.hpp"

namespace strata {

struct PhaseConfig {
  std::string name;
  std::string data;                  // as given, for messages: a path, or "[a, b]" for a list
  std::vector<std::string> sources;  // the paths (one unless a corpus lists several)
  std::string format;                // auto | json | text | corpus
  // format: corpus (text/corpus.hpp, docs/data.md): what a document is, the record
  // separator line, the file names taken from directories, tokens between window starts
  // (0: max_seq_len).
  std::string document = "file";
  std::string separator = "%";
  std::string include = "*";
  std::int64_t stride = 0;
  std::int64_t epochs = 1;
  std::size_t batch = 1;
  LrSchedule schedule;
  bool shuffle = false;
  std::size_t accumulate = 1;      // batches per optimizer step
  std::string validation;          // validation data file ("" : none, or the fraction)
  double validation_fraction = 0;  // of the data's examples held out (0: none)
  SourceMark data_mark;            // where `data:` is, for errors about the file
  SourceMark validation_mark;      // where `validation:` is
};

struct GenerationConfig {
  std::int64_t max_tokens = 80;
  double temperature = 0;  // 0: greedy
  std::int64_t top_k = 0;  // 0: off
  double top_p = 1.0;      // 1: off
  std::uint64_t seed = 0;
  std::vector<std::string> prompts;
  std::int64_t every = 0;  // steps between samples printed while training (0: none)
};

// The contents of the data files, by path as given: each file is read once, so a pipe
// or /dev/stdin works and the vocabulary and the training see the same bytes.
// Shared by copies of a RunConfig (language_model.cpp fills it).
using DataFiles = std::map<std::string, std::string>;

struct RunConfig {
  std::string file;
  std::string text;                                   // the file as read, saved with checkpoints
  std::map<std::string, std::string> data_overrides;  // --data phase=PATH, as given
  std::uint64_t seed = 0;
  int threads = 1;
  std::vector<std::string> plugins;
  std::string task_type = "language_modeling";  // or "classification"
  ConfigNode task;                              // the `task:` section (invalid when absent)
  ConfigNode model;
  ConfigNode optimizer;
  ConfigNode tokenizer;  // invalid when absent: the default {type: word}
  std::int64_t checkpoint_every = 0;
  std::int64_t eval_every = 0;  // steps between validation evaluations (0: epoch ends only)
  std::int64_t patience = 0;    // evaluations without improvement that end a phase (0: never)
  std::vector<PhaseConfig> phases;
  GenerationConfig generation;
  std::shared_ptr<DataFiles> data_files = std::make_shared<DataFiles>();
};

// Parses and validates everything but the model and optimizer sections (which are
// validated when built). `data_overrides` maps a phase name to a replacement path;
// an unknown phase name is an error.
RunConfig parse_run_config(const std::string& text, const std::string& file,
                           const std::map<std::string, std::string>& data_overrides = {});
RunConfig load_run_config(const std::string& path,
                          const std::map<std::string, std::string>& data_overrides = {});

// The spec of a top-level key ("seed", "threads") or of a section's ("generation.top_k"):
// the command line checks its options against the same types and ranges as the file.
const KeySpec& run_config_key(std::string_view key);

}  // namespace strata
