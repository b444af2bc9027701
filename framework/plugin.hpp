// Runtime plugins: a shared library whose layers register themselves with
// STRATA_REGISTER_LAYER when it is loaded.
#pragma once

#include <string>

namespace strata {

// Loads the library at `path` once; returns the number of layers it registered.
// Throws Error for a missing file, a library that cannot be loaded, one that
// registers nothing, or one whose type names clash with registered ones.
int load_plugin(const std::string& path);

}  // namespace strata
