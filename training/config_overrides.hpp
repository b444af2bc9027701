// `--set path.to.key=value`: any config value from the command line, validated like the
// file, its errors naming the override.
//
//   strata train configs/tiny.yaml --set training.phases.0.epochs=3 --set seed=7
//   strata train cfg.yaml --set 'model.layers.1={type: TransformerBlock, dim: 8, heads: 2}'
//
// The file is validated first (its own errors at its file:line:col). The overrides are
// then applied to its YAML in order and the result validated again: an error in it is
// reported as "--set PATH=VALUE: what" (see name_override). The run keeps the
// overridden text as its config (a checkpoint's config.yaml), so a resume needs no
// --set again.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "framework/errors.hpp"
#include "training/run_config.hpp"

namespace strata {

// The config at `path` with `sets` ("path=value" each) applied, validated.
RunConfig load_run_config(const std::string& path,
                          const std::map<std::string, std::string>& data_overrides,
                          const std::vector<std::string>& sets);

// What `file` is called once overrides are applied ("cfg.yaml (with --set)"): positions
// in errors about it refer to the overridden text.
std::string overridden_file_name(const std::string& file);

// For an error raised later about the overridden config (its model or optimizer, when
// built): "--set PATH=VALUE: what" naming the override at or before the error's position
// in `config.text`; the error unchanged when it is about another file or no --set was given.
std::string name_override(const ConfigError& error, const RunConfig& config,
                          const std::vector<std::string>& sets);

}  // namespace strata
