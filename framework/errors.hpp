// Errors that carry where they come from. A ConfigError prints as
//   file:line:col: <context>: <what was expected>
// e.g. "configs/x.yaml:7:5: model.layers[2] (TransformerBlock "blocks"): unknown key
// "hedas" (did you mean "heads"?)". Line and column are 1-based; 0 means unknown.
#pragma once

#include <stdexcept>
#include <string>

namespace strata {

struct SourceMark {
  std::string file;
  int line = 0;
  int column = 0;
  std::string to_string() const;  // "file:line:col", or "file" when the line is 0
};

class ConfigError : public std::runtime_error {
 public:
  ConfigError(SourceMark mark, std::string context, std::string detail);
  const SourceMark& mark() const { return mark_; }
  const std::string& context() const { return context_; }
  const std::string& detail() const { return detail_; }

 private:
  SourceMark mark_;
  std::string context_;
  std::string detail_;
};

// Any other user-facing failure (missing data file, bad checkpoint, ...): the CLI
// prints what() and exits non-zero.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace strata
