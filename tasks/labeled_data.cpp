#include "tasks/labeled_data.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>
#include <sstream>

#include "framework/errors.hpp"
#include "framework/files.hpp"
#include "framework/npz.hpp"
#include "framework/rng.hpp"

namespace strata {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// The whole field as a number (from_chars also reads "nan" and "inf": checked by callers).
bool parse_number(std::string_view field, double& value) {
  if (!field.empty() && field.front() == '+') field.remove_prefix(1);
  const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
  return ec == std::errc() && end == field.data() + field.size() && !field.empty();
}

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> fields;
  for (std::size_t start = 0;;) {
    const std::size_t comma = line.find(',', start);
    fields.push_back(trim(line.substr(start, comma - start)));
    if (comma == std::string_view::npos) return fields;
    start = comma + 1;
  }
}

// A label: a whole number in [0, classes); `where` starts the error.
std::int32_t checked_label(double value, const std::string& text, std::size_t classes,
                           const std::string& where) {
  if (!(value >= 0 && value < double(classes) && value == std::floor(value)))
    throw Error(where + "label " + text + " is not a class: expected a whole number in [0, " +
                std::to_string(classes) + ") (task.classes)");
  return std::int32_t(value);
}

// One CSV line's fields into `rows`; `where` is "path:line: ".
void parse_csv_line(std::string_view line, std::size_t classes, const std::string& where,
                    LabeledRows& rows) {
  const std::vector<std::string_view> fields = split_fields(line);
  if (fields.size() != rows.features + 1)
    throw Error(where + "expected " + std::to_string(rows.features + 1) + " fields (" +
                std::to_string(rows.features) + " features, then the label), got " +
                std::to_string(fields.size()));
  for (std::size_t f = 0; f < fields.size(); ++f) {
    double value = 0;
    const std::string text(fields[f]);
    if (!parse_number(fields[f], value))
      throw Error(where + "field " + std::to_string(f + 1) + ": \"" + text + "\" is not a number");
    if (f == rows.features) {
      rows.y.push_back(checked_label(value, text, classes, where));
    } else {
      if (!std::isfinite(value) || !std::isfinite(float(value)))
        throw Error(where + "field " + std::to_string(f + 1) + ": feature " + text +
                    " is not a finite float");
      rows.x.push_back(float(value));
    }
  }
}

}  // namespace

LabeledRows parse_csv_rows(const std::string& text, const std::string& path, std::size_t features,
                           std::size_t classes) {
  LabeledRows rows;
  rows.features = features;
  std::size_t line_number = 0;
  bool first = true;
  for (std::size_t start = 0; start < text.size();) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string_view line = trim(std::string_view(text).substr(start, end - start));
    start = end + 1;
    ++line_number;
    if (line.empty()) continue;
    double ignored = 0;
    const bool header = first && !parse_number(split_fields(line)[0], ignored);
    first = false;
    if (header) continue;
    parse_csv_line(line, classes, path + ":" + std::to_string(line_number) + ": ", rows);
  }
  if (rows.rows() == 0) throw Error(path + ": no data rows");
  return rows;
}

LabeledRows load_csv_rows(const std::string& path, std::size_t features, std::size_t classes) {
  return parse_csv_rows(read_file(path), path, features, classes);
}

LabeledRows load_npy_rows(const std::string& features_path, const std::string& labels_path,
                          std::size_t features, std::size_t classes) {
  const NamedArray x = read_npy(read_file(features_path), features_path);
  const NamedArray y = read_npy(read_file(labels_path), labels_path);
  if (x.shape.size() != 2 || x.shape[1] != features)
    throw Error(features_path + ": expected features of shape (rows, " + std::to_string(features) +
                ") (task.features), got " + std::to_string(x.shape.size()) + " dimensions" +
                (x.shape.size() == 2
                     ? " (" + std::to_string(x.shape[0]) + ", " + std::to_string(x.shape[1]) + ")"
                     : std::string()));
  if (y.shape.size() != 1 || y.shape[0] != x.shape[0])
    throw Error(labels_path + ": expected labels of shape (" + std::to_string(x.shape[0]) +
                ",), one per row of " + features_path);
  if (y.data.empty()) throw Error(labels_path + ": no data rows");
  LabeledRows rows;
  rows.features = features;
  for (std::size_t i = 0; i < x.data.size(); ++i)
    if (!std::isfinite(x.data[i]))
      throw Error(features_path + ": row " + std::to_string(i / features) + ", feature " +
                  std::to_string(i % features) + " is not finite");
  rows.x = x.data;
  for (std::size_t i = 0; i < y.data.size(); ++i)
    rows.y.push_back(checked_label(y.data[i], (std::ostringstream() << y.data[i]).str(), classes,
                                   labels_path + ": row " + std::to_string(i) + ": "));
  return rows;
}

RowSplit split_rows(std::size_t rows, double validation_fraction, std::uint64_t seed) {
  std::vector<std::size_t> order(rows);
  std::iota(order.begin(), order.end(), std::size_t(0));
  Rng rng(seed);
  rng.shuffle(order.begin(), order.end());
  std::size_t held = std::size_t(std::llround(double(rows) * validation_fraction));
  if (validation_fraction > 0 && held == 0) held = 1;
  held = std::min(held, rows);
  RowSplit split;
  split.held_out.assign(order.begin(), order.begin() + std::ptrdiff_t(held));
  split.train.assign(order.begin() + std::ptrdiff_t(held), order.end());
  std::sort(split.held_out.begin(), split.held_out.end());
  std::sort(split.train.begin(), split.train.end());
  return split;
}

LabeledRows select_rows(const LabeledRows& rows, const std::vector<std::size_t>& indices) {
  LabeledRows out;
  out.features = rows.features;
  out.x.reserve(indices.size() * rows.features);
  for (std::size_t i : indices) {
    out.x.insert(out.x.end(), rows.x.begin() + std::ptrdiff_t(i * rows.features),
                 rows.x.begin() + std::ptrdiff_t((i + 1) * rows.features));
    out.y.push_back(rows.y[i]);
  }
  return out;
}

}  // namespace strata
