#include "training/run_directory.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "framework/errors.hpp"
#include "framework/files.hpp"

namespace strata {

namespace fs = std::filesystem;

namespace {

// The pid that holds a flock on the file with `st`'s device and inode, from
// /proc/locks ("1: FLOCK  ADVISORY  WRITE 1234 08:02:5678 0 EOF"; waiters have "->").
long lock_holder(const struct stat& st) {
  std::ifstream locks("/proc/locks");
  std::string line;
  while (std::getline(locks, line)) {
    std::istringstream in(line);
    std::string id, kind, mode, access, device;
    long pid = 0;
    if (!(in >> id >> kind) || kind != "FLOCK" || !(in >> mode >> access >> pid >> device))
      continue;
    unsigned major_id = 0, minor_id = 0;
    unsigned long inode = 0;
    if (std::sscanf(device.c_str(), "%x:%x:%lu", &major_id, &minor_id, &inode) == 3 &&
        inode == st.st_ino && major_id == major(st.st_dev) && minor_id == minor(st.st_dev))
      return pid;
  }
  return 0;
}

std::string command_line_of(long pid) {
  std::string text;
  try {
    text = read_file("/proc/" + std::to_string(pid) + "/cmdline");
  } catch (const Error&) {
    return "";
  }
  std::replace(text.begin(), text.end(), '\0', ' ');
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

std::string holder_description(int fd) {
  struct stat st {};
  const long pid = ::fstat(fd, &st) == 0 ? lock_holder(st) : 0;
  if (pid <= 0) return "another process";
  const std::string command = command_line_of(pid);
  return "another process (pid " + std::to_string(pid) + (command.empty() ? "" : ": " + command) +
         ")";
}

// Creates and removes a file in `dir`: the first checkpoint must not be the first write.
void test_write(const std::string& dir) {
  const std::string probe =
      (fs::path(dir) / (".strata-write-test.tmp-" + std::to_string(::getpid()))).string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0 || ::write(fd, "x", 1) != 1) {
    const std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd), ::unlink(probe.c_str());
    throw Error(dir + ": cannot write in this directory (" + why + "): pick another --out");
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

// What a new run would clobber in `dir` (empty: nothing).
std::vector<std::string> entries_of(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

void refuse_occupied(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(fs::path(dir) / "checkpoint", ec))
    throw Error(dir + " already holds a checkpoint: pass --resume " + dir +
                " to continue it, or another --out");
  const std::vector<std::string> names = entries_of(dir);
  if (names.empty()) return;
  std::string list;
  for (std::size_t i = 0; i < names.size() && i < 5; ++i) list += (i ? ", " : "") + names[i];
  if (names.size() > 5) list += " and " + std::to_string(names.size() - 5) + " more";
  const bool metrics = std::find(names.begin(), names.end(), "metrics.csv") != names.end();
  throw Error(dir + " is not empty (" + list +
              ") and holds no checkpoint to resume: pick another --out, or remove what is there" +
              (metrics ? " (a new run would overwrite metrics.csv)" : ""));
}

}  // namespace

RunDirectoryLock::RunDirectoryLock(RunDirectoryLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      created_(std::move(other.created_)) {}

RunDirectoryLock& RunDirectoryLock::operator=(RunDirectoryLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    created_ = std::move(other.created_);
  }
  return *this;
}

RunDirectoryLock::~RunDirectoryLock() {
  // A run that failed before writing anything leaves no directory behind; rmdir(2)
  // removes only empty ones, so nothing written there is ever lost.
  for (const std::string& d : created_) ::rmdir(d.c_str());
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

RunDirectoryLock lock_run_directory(const std::string& dir) {
  RunDirectoryLock lock;
  lock.fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock.fd_ < 0)
    throw Error(dir + ": cannot open the run directory (" + std::strerror(errno) + ")");
  lock.path_ = dir;
  if (::flock(lock.fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK)
      throw Error(dir + ": cannot lock the run directory (" + std::strerror(errno) + ")");
    throw Error(dir + " is in use by " + holder_description(lock.fd_) +
                ": wait for it to end, or pick another --out");
  }
  test_write(dir);
  return lock;
}

RunDirectoryLock claim_new_run_directory(const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> created;  // innermost first
  if (!fs::exists(dir, ec)) {
    for (fs::path p = fs::path(dir).lexically_normal(); !p.empty() && !fs::exists(p, ec);
         p = p.parent_path()) {
      created.push_back(p.string());
      if (p == p.parent_path()) break;
    }
    fs::create_directories(dir, ec);
    if (ec || !fs::is_directory(dir))
      throw Error(dir + ": cannot create directory (" + (ec ? ec.message() : "not a directory") +
                  "): pick another --out");
  } else if (!fs::is_directory(dir, ec)) {
    throw Error(dir + " exists and is not a directory: pick another --out");
  }
  RunDirectoryLock lock;
  try {
    // Locked first, so that a directory another run is using is reported as such.
    lock = lock_run_directory(dir);
    refuse_occupied(dir);
  } catch (const Error&) {
    for (const std::string& d : created) ::rmdir(d.c_str());
    throw;
  }
  lock.created_ = std::move(created);
  return lock;
}

}  // namespace strata
