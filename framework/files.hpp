// File helpers that never leave a half-written file behind.
#pragma once

#include <string>

namespace strata {

// Reads a whole file; throws Error("<path>: cannot read ...") on failure.
std::string read_file(const std::string& path);

// Writes `bytes` to path.tmp-<pid>, flushes it to disk, then renames it over `path`:
// readers see the old file or the new one, never a torn one.
void write_file_atomic(const std::string& path, const std::string& bytes);

// Makes `path` (and parents) a directory; throws Error on failure.
void make_directories(const std::string& path);

// Atomically puts directory `fresh` in place of `target` (Linux renameat2 EXCHANGE
// when `target` exists). Returns true when `fresh` now holds what was there before,
// for the caller to remove.
bool replace_directory(const std::string& fresh, const std::string& target);

void sync_directory(const std::string& path);

}  // namespace strata
