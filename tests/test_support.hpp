// Shared helpers for the test suites: temporary directories and small configs.
#pragma once

#include <stdlib.h>

#include <boost/test/unit_test.hpp>
#include <exception>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "framework/tensor.hpp"
#include "optimizers/optimizer.hpp"
#include "tasks/batch.hpp"
#include "tasks/language_model.hpp"
#include "tasks/run.hpp"
#include "training/trainer.hpp"

namespace strata::testing {

// A fresh directory under the system temp dir, removed when the object dies.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag = "tmp") {
    std::string pattern =
        (std::filesystem::temp_directory_path() / ("strata-" + tag + "-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(file(name), std::ios::binary) << text;
    return file(name);
  }
};

// Runs `f`, which must throw; returns the message (and fails the test if nothing was thrown).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  BOOST_ERROR("expected an error, none was thrown");
  return {};
}

// Trains the run described by `yaml` from scratch (its optimizer included); stops
// after `stop_after` steps as if killed when >= 0.
inline TrainResult train_from_yaml(const std::string& yaml, const std::string& out_dir = "",
                                   std::int64_t stop_after = -1) {
  Run run = Run::start(parse_run_config(yaml, "test.yaml"));
  TrainOptions options;
  options.out_dir = out_dir;
  options.stop_after_steps = stop_after;
  return run.train(options);
}

// Continues the run in `run_dir` from its checkpoint, as `strata train --resume` does.
inline TrainResult resume_training(const std::string& run_dir) {
  Run run = Run::resume(run_dir);
  TrainOptions options;
  options.out_dir = run_dir;
  return run.train(options);
}

// A small transformer LM config (model section only) over `vocab` tokens.
inline std::string tiny_model_yaml(int vocab, const std::string& norm = "post", int heads = 2) {
  return "model:\n"
         "  max_seq_len: 16\n"
         "  vocab_size: " +
         std::to_string(vocab) +
         "\n"
         "  layers:\n"
         "    - {type: Embedding, dim: 8}\n"
         "    - {type: TransformerBlock, name: blocks, repeat: 2, dim: 8, hidden: 16, heads: " +
         std::to_string(heads) + ", norm: " + norm +
         "}\n"
         "    - {type: OutputProjection}\n";
}

// The reference for data parallel's split (tasks/batch.hpp rank_rows): rows
// [rank B / ranks, (rank + 1) B / ranks) cut out of a whole batch of B.
inline Batch rows_of_whole_batch(const Batch& whole, std::size_t rank, std::size_t ranks) {
  const std::size_t first = rank * whole.batch / ranks, end = (rank + 1) * whole.batch / ranks;
  Batch rows;
  rows.batch = end - first;
  rows.length = whole.length;
  const auto at = [&](std::size_t r) { return std::ptrdiff_t(r * whole.length); };
  rows.inputs.assign(whole.inputs.begin() + at(first), whole.inputs.begin() + at(end));
  rows.targets.assign(whole.targets.begin() + at(first), whole.targets.begin() + at(end));
  return rows;
}

}  // namespace strata::testing
