// The language model of a run: its config, tokenizer, layer stack and random state.
// Built fresh from a config (tokenizer from the phases' data, weights from the seed)
// or restored from a checkpoint directory.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "framework/model.hpp"
#include "framework/npz.hpp"
#include "framework/rng.hpp"
#include "text/tokenizer.hpp"
#include "training/checkpoint.hpp"
#include "training/run_config.hpp"

namespace strata {

struct LanguageModel {
  RunConfig config;
  std::unique_ptr<Tokenizer> tokenizer;
  Rng rng;
  Model<float> model;
  // A file to which training appends, per batch of a corpus phase, the window starts of
  // its rows (`strata train --trace-batches FILE`, docs/data.md; over MPI also
  // FILE.rank<r>, the windows rank r read); empty: none.
  std::string batch_trace;

  // `tokenizer`: instead of the one build_tokenizer makes (--init-from keeps its source's).
  static LanguageModel create(RunConfig config, std::unique_ptr<Tokenizer> tokenizer = nullptr);
  // Restores config, tokenizer and parameters from `checkpoint` (read from `run_dir`).
  static LanguageModel restore(const Checkpoint& checkpoint, const std::string& run_dir);

  std::vector<NamedArray> export_parameters() const;
  // Copies arrays into parameters by name; a missing or extra name or a different
  // shape is an error ("checkpoint from a different architecture").
  void import_parameters(const std::vector<NamedArray>& arrays, const std::string& what);

  // Token ids of `text`; unknown words become <unk> and are listed in `unknown`.
  std::vector<std::int32_t> encode(const std::string& text,
                                   std::vector<std::string>* unknown) const;
};

// Loads the config's `plugins:` (create() and restore() do it before building the
// model); an error names the config file. Paths are relative to the working
// directory; a relative path not found there is satisfied by an already loaded
// library of the same file name (so `--plugin` can stand in for it when a run is used
// from another directory).
void load_config_plugins(const RunConfig& config);

// The training texts of every phase, loaded with the phase's format. Each file is read
// once per RunConfig (see RunConfig::data_files): calls after the first reuse it. A
// corpus phase's entry is empty: its documents are streamed (tasks/corpus_phase.hpp).
std::vector<std::vector<std::string>> load_phase_texts(const RunConfig& config);

// The tokenizer `strata train` builds (the config's `tokenizer:`) from every phase's
// data together (a corpus streamed, never held whole).
std::unique_ptr<Tokenizer> build_tokenizer(const RunConfig& config);

// The distinct words of `prompt` missing from `tokenizer`'s vocabulary, in order.
std::vector<std::string> unknown_prompt_words(const Tokenizer& tokenizer,
                                              const std::string& prompt);
// One line per generation prompt of `config` that cannot be answered because it has
// no word of the vocabulary (or no word at all), e.g.
//   run.yaml: generation.prompts[1] "zebra?": none of its words is in the vocabulary
//   (zebra, ?), so it reads as <unk> only
// `check` prints them as warnings; so does `train` before its post-training samples.
std::vector<std::string> unanswerable_prompts(const RunConfig& config, const Tokenizer& tokenizer);

}  // namespace strata
