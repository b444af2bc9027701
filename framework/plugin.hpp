// Runtime plugins: a shared library whose layers and optimizers register themselves
// with STRATA_REGISTER_LAYER / STRATA_REGISTER_OPTIMIZER when it is loaded
// (docs/writing-a-layer.md, docs/writing-an-optimizer.md).
//
// The CLI loads the libraries listed under `plugins:` in a run's config (also when a
// checkpoint is restored, from the config saved with it) and those given with
// `--plugin PATH`. A relative path is resolved against the working directory, not the
// config file's folder. Libraries stay loaded for the life of the process (their code
// backs the registered factories); each type records the library's canonical path as
// its origin, which `strata layers` prints.
#pragma once

#include <string>
#include <vector>

namespace strata {

// Loads the library at `path` once (by canonical path: loading it again returns 0);
// returns the number of layers and optimizers it registered. Throws Error, naming the
// path, for a missing file, a library that cannot be loaded (dlopen's reason), one that
// registers nothing, or one whose type names clash with registered ones (its other
// types stay registered).
int load_plugin(const std::string& path);
// load_plugin() for each path, in order.
void load_plugins(const std::vector<std::string>& paths);
// Canonical paths of the libraries loaded so far.
std::vector<std::string> loaded_plugins();

}  // namespace strata
