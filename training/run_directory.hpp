// A run directory (`strata train --out DIR`) belongs to one process at a time, and a
// new run never replaces what is already there.
//
// The lock is flock(2) on the directory itself: nothing is created for it, the kernel
// drops it when the process ends however it ends, and a second process is refused at
// once. Its message names the holder (pid and command line, from /proc/locks and
// /proc/PID/cmdline). Claiming a directory also test-writes it, so an unwritable
// --out is found before training starts, not at the first checkpoint.
#pragma once

#include <string>
#include <vector>

namespace strata {

class RunDirectoryLock {
 public:
  RunDirectoryLock() = default;
  RunDirectoryLock(RunDirectoryLock&& other) noexcept;
  RunDirectoryLock& operator=(RunDirectoryLock&& other) noexcept;
  ~RunDirectoryLock();
  const std::string& path() const { return path_; }

 private:
  friend RunDirectoryLock lock_run_directory(const std::string& dir);
  friend RunDirectoryLock claim_new_run_directory(const std::string& dir);
  int fd_ = -1;
  std::string path_;
  std::vector<std::string> created_;  // directories made for the run: removed if left empty
};

// Locks existing directory `dir` and checks that a file can be written in it. Throws
// Error("DIR is in use by another process (pid N: COMMAND) ...") when another process
// holds it.
RunDirectoryLock lock_run_directory(const std::string& dir);

// For a new run (`train CONFIG --out DIR`, or the DST of `--resume SRC --out DST`):
// DIR must not exist or be empty. Creates it if need be, locks it, then refuses a
// checkpoint (saying how to continue it) and any other entry (naming what is there)
// without changing anything. The directories it created are removed when the lock is
// released if they are still empty (a run refused before its first write).
RunDirectoryLock claim_new_run_directory(const std::string& dir);

}  // namespace strata
