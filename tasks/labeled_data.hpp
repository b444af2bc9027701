// Labeled feature rows for classification: a CSV file or a pair of .npy files, checked
// as they are read, and split into training and held-out rows by the run's seed.
//
// CSV: one example per line, `features` numbers then the integer label (0 to classes-1),
// comma-separated; an optional header line (its first field not a number) is skipped,
// and so are empty lines. .npy: features (N, F) and labels (N,) of any numeric type
// (numpy's float32/64 or integers); labels must be whole numbers.
//
// Every problem is an Error naming the file and, for CSV, the line and field: a row of
// another length, a field that is not a number, a NaN or infinite feature, a label that
// is not a whole number in [0, classes).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace strata {

struct LabeledRows {
  std::size_t features = 0;
  std::vector<float> x;         // rows * features, row-major
  std::vector<std::int32_t> y;  // one label per row
  std::size_t rows() const { return y.size(); }
};

LabeledRows load_csv_rows(const std::string& path, std::size_t features, std::size_t classes);
LabeledRows load_npy_rows(const std::string& features_path, const std::string& labels_path,
                          std::size_t features, std::size_t classes);
// The same rows parsed from CSV text; `path` names it in errors (tests, pipes).
LabeledRows parse_csv_rows(const std::string& text, const std::string& path, std::size_t features,
                           std::size_t classes);

// Row indices: a seeded shuffle of 0..rows-1, the first round(rows * validation_fraction)
// held out (at least one when the fraction is above 0), the rest for training; each
// list sorted. Deterministic in (rows, fraction, seed): bench/digits_torch.py reads the
// lists a run writes (DIR/split.json) rather than re-deriving them.
struct RowSplit {
  std::vector<std::size_t> train;
  std::vector<std::size_t> held_out;
};
RowSplit split_rows(std::size_t rows, double validation_fraction, std::uint64_t seed);

// The rows at `indices`, in that order.
LabeledRows select_rows(const LabeledRows& rows, const std::vector<std::size_t>& indices);

}  // namespace strata
