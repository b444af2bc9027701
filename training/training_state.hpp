// What a training run keeps beside its parameters, shared by every task's trainer:
// the optimizer's state as named arrays (checkpoints), and DIR/metrics.csv.
#pragma once

#include <string>
#include <vector>

#include "framework/model.hpp"
#include "framework/npz.hpp"
#include "optimizers/optimizer.hpp"
#include "training/checkpoint.hpp"

namespace strata {

// A model's parameters as named arrays (checkpoints), and back: a missing or extra name
// or a different shape is an error ("checkpoint from a different architecture").
std::vector<NamedArray> export_parameters(const Model<float>& model);
void import_parameters(Model<float>& model, const std::vector<NamedArray>& arrays,
                       const std::string& what);

// 75 -> "1m15s" (progress lines' ETA).
std::string format_duration(double seconds);

// The optimizer's state as "<parameter>/<slot>" arrays, and back (each state must name a
// parameter of `model` with its shape; `what` names the file in errors).
std::vector<NamedArray> export_optimizer_state(const Optimizer<float>& optimizer);
void import_optimizer_state(Optimizer<float>& optimizer, const Checkpoint& checkpoint,
                            const Model<float>& model, const std::string& what);

// Keeps the header and the first `rows` rows of DIR/metrics.csv (a resume rewrites the
// rows after its checkpoint).
void trim_metrics(const std::string& out_dir, std::size_t rows);
// The same for any CSV file with a header line (steps.csv, validation.csv).
void trim_csv(const std::string& path, std::size_t rows);

// Appends `row` (without its newline) to the CSV file `path`, and `header` first when it
// creates the file.
void append_csv(const std::string& path, const std::string& header, const std::string& row);

// Appends one row per epoch (`row`, without its newline) to DIR/metrics.csv, and
// `header` first when it creates the file. The task names the columns.
void append_metrics(const std::string& out_dir, const std::string& header, const std::string& row);

}  // namespace strata
