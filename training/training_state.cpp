#include "training/training_state.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <sstream>

#include "framework/files.hpp"

namespace strata {

std::string format_duration(double seconds) {
  const long s = std::lround(seconds);
  std::ostringstream out;
  if (s >= 3600) out << s / 3600 << "h";
  out << std::setfill('0');
  if (s >= 60) out << std::setw(s >= 3600 ? 2 : 1) << (s / 60) % 60 << "m";
  out << std::setw(s >= 60 ? 2 : 1) << s % 60 << "s";
  return out.str();
}

std::vector<NamedArray> export_optimizer_state(const Optimizer<float>& optimizer) {
  std::vector<NamedArray> out;
  // Each state tensor is released as soon as it is copied: the whole copy and the
  // whole map side by side were 4 MB of the recipe's peak memory.
  for (auto state = optimizer.state(); !state.empty();) {
    const auto node = state.extract(state.begin());
    NamedArray a;
    a.name = node.key();
    a.shape.assign(node.mapped().shape().begin(), node.mapped().shape().end());
    a.data.assign(node.mapped().begin(), node.mapped().end());
    out.push_back(std::move(a));
  }
  return out;
}

void import_optimizer_state(Optimizer<float>& optimizer, const Checkpoint& checkpoint,
                            const Model<float>& model, const std::string& what) {
  std::map<std::string, Tensor<float>> state;
  for (const NamedArray& a : checkpoint.optimizer_state) {
    // "<parameter>/<slot>": the parameter must exist with the same shape.
    const Parameter<float>* p = model.find_parameter(a.name.substr(0, a.name.rfind('/')));
    if (!p || !std::equal(a.shape.begin(), a.shape.end(), p->value.shape().begin(),
                          p->value.shape().end()))
      throw Error(what + ": state \"" + a.name + "\" " +
                  (p ? "has another shape than its parameter" : "names no parameter of the model") +
                  " (checkpoint from a different architecture)");
    Tensor<float> t = Tensor<float>::from_shape(a.shape);
    std::copy(a.data.begin(), a.data.end(), t.begin());
    state.emplace(a.name, std::move(t));
  }
  optimizer.load_state(state, checkpoint.optimizer_steps);
}

// Keeps the header and the first `rows` rows of DIR/metrics.csv. Rows after them were
// written after the checkpoint being resumed (or by an attempt that never saved one):
// this run writes them again. A row torn by a kill is dropped with them. Truncating in
// place creates no temporary and a crash leaves the rows before or after it, both of
// which the next resume trims the same way.
void trim_metrics(const std::string& out_dir, std::size_t rows) {
  trim_csv((std::filesystem::path(out_dir) / "metrics.csv").string(), rows);
}

void trim_csv(const std::string& path, std::size_t rows) {
  if (!std::filesystem::exists(path)) return;
  if (rows == 0) {
    std::filesystem::remove(path);  // the first row written creates it with its header
    return;
  }
  const std::string text = read_file(path);
  std::size_t end = 0;
  for (std::size_t line = 0; line <= rows; ++line) {  // the header, then `rows` rows
    const std::size_t newline = text.find('\n', end);
    if (newline == std::string::npos) break;
    end = newline + 1;
  }
  if (end < text.size() && ::truncate(path.c_str(), off_t(end)) != 0)
    throw Error(path + ": cannot trim to the checkpoint's " + std::to_string(rows) + " rows (" +
                std::strerror(errno) + ")");
}

void append_metrics(const std::string& out_dir, const std::string& header, const std::string& row) {
  make_directories(out_dir);  // the first epochs may end before the first checkpoint
  append_csv((std::filesystem::path(out_dir) / "metrics.csv").string(), header, row);
}

void append_csv(const std::string& path, const std::string& header, const std::string& row) {
  make_directories(std::filesystem::path(path).parent_path().string());  // before any checkpoint
  const bool fresh = !std::filesystem::exists(path);
  std::ofstream out(path, std::ios::app);
  if (fresh) out << header << '\n';
  out << row << '\n';
  out.close();
  if (!out) throw Error(path + ": cannot write");
}

std::vector<NamedArray> export_parameters(const Model<float>& model) {
  std::vector<NamedArray> out;
  for (const Parameter<float>* p : model.parameters()) {
    NamedArray a;
    a.name = p->name;
    a.shape.assign(p->value.shape().begin(), p->value.shape().end());
    a.data.assign(p->value.begin(), p->value.end());
    out.push_back(std::move(a));
  }
  return out;
}

void import_parameters(Model<float>& model, const std::vector<NamedArray>& arrays,
                       const std::string& what) {
  const auto& params = model.parameters();
  for (const NamedArray& a : arrays)
    if (!model.find_parameter(a.name))
      throw Error(what + ": parameter \"" + a.name +
                  "\" does not exist in this model (checkpoint from a different architecture)");
  for (Parameter<float>* p : params) {
    auto it = std::find_if(arrays.begin(), arrays.end(),
                           [&](const NamedArray& a) { return a.name == p->name; });
    if (it == arrays.end())
      throw Error(what + ": no values for parameter \"" + p->name +
                  "\" (checkpoint from a different architecture)");
    if (!std::equal(it->shape.begin(), it->shape.end(), p->value.shape().begin(),
                    p->value.shape().end()))
      throw Error(what + ": parameter \"" + p->name + "\" has shape " +
                  to_string(Shape(it->shape.begin(), it->shape.end())) + ", the model needs " +
                  to_string(Shape(p->value.shape().begin(), p->value.shape().end())) +
                  " (checkpoint from a different architecture)");
    std::copy(it->data.begin(), it->data.end(), p->value.begin());
  }
}

}  // namespace strata
