#include "app/plot.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

#include "framework/errors.hpp"

extern char** environ;

namespace fs = std::filesystem;

namespace strata {
namespace {

// One curve: (step, loss) points in file order.
struct LossCurve {
  std::string source;  // the file read
  std::vector<double> step, loss;
  std::size_t skipped = 0;  // rows with a non-finite loss
};

std::vector<std::string> split_fields(const std::string& line) {
  std::vector<std::string> fields;
  std::stringstream in(line);
  std::string field;
  while (std::getline(in, field, ',')) fields.push_back(field);
  if (!line.empty() && line.back() == ',') fields.emplace_back();
  return fields;
}

std::size_t column_of(const std::vector<std::string>& header, const std::string& name,
                      const std::string& path, const std::string& line) {
  for (std::size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return i;
  throw Error(path + ": no \"" + name + "\" column in the header line \"" + line + "\"");
}

// A decimal number (nan and inf included: a diverged loss is written that way).
bool parse_number(const std::string& text, double& value) {
  if (text.empty()) return false;
  char* end = nullptr;
  value = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size();
}

std::string read_whole_file(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw Error(path + ": no such file");
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) throw Error(path + ": cannot read: " + std::strerror(errno));
  return text.str();
}

// The `step` and `loss` columns of a CSV file with a header line; every row must have
// the header's number of fields and numbers in both columns.
LossCurve read_loss_curve(const std::string& path) {
  std::stringstream in(read_whole_file(path));
  LossCurve curve;
  curve.source = path;
  std::string line;
  if (!std::getline(in, line) || line.find_first_not_of(" \t\r") == std::string::npos)
    throw Error(path + ": empty file (expected a header line with step and loss)");
  if (line.back() == '\r') line.pop_back();
  const std::vector<std::string> header = split_fields(line);
  const std::size_t step_at = column_of(header, "step", path, line);
  const std::size_t loss_at = column_of(header, "loss", path, line);
  for (std::size_t number = 2; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const std::vector<std::string> fields = split_fields(line);
    const std::string where = path + ":" + std::to_string(number) + ": ";
    if (fields.size() != header.size())
      throw Error(where + std::to_string(fields.size()) + " fields, the header has " +
                  std::to_string(header.size()));
    double step = 0, loss = 0;
    if (!parse_number(fields[step_at], step) || !std::isfinite(step))
      throw Error(where + "step is not a number: \"" + fields[step_at] + "\"");
    if (!parse_number(fields[loss_at], loss))
      throw Error(where + "loss is not a number: \"" + fields[loss_at] + "\"");
    if (!std::isfinite(loss)) {
      ++curve.skipped;
      continue;
    }
    curve.step.push_back(step);
    curve.loss.push_back(loss);
  }
  return curve;
}

// `text` as a gnuplot single-quoted string: quotes doubled, control characters (which
// would end the command) replaced by '?'.
std::string gnuplot_quote(const std::string& text) {
  std::string quoted = "'";
  for (const char c : text) {
    if (c == '\'')
      quoted += "''";
    else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      quoted += '?';
    else
      quoted += c;
  }
  return quoted + "'";
}

// The script: each curve a datablock, a PNG on standard output. Few points (one per
// epoch) are drawn with their markers, many as a line.
std::string gnuplot_script(const std::vector<LossCurve>& curves,
                           const std::vector<std::string>& names, const std::string& title) {
  std::ostringstream s;
  s << "set terminal pngcairo size 960,600 noenhanced\nset output\n"
    << "set title " << gnuplot_quote(title) << "\nset xlabel 'step'\n"
    << "set ylabel 'loss (cross-entropy per token)'\nset grid\nset key top right\n";
  s.precision(9);
  for (std::size_t c = 0; c < curves.size(); ++c) {
    s << "$curve" << c << " << EOD\n";
    for (std::size_t i = 0; i < curves[c].step.size(); ++i)
      s << curves[c].step[i] << ' ' << curves[c].loss[i] << '\n';
    s << "EOD\n";
  }
  s << "plot ";
  for (std::size_t c = 0; c < curves.size(); ++c)
    s << (c ? ", " : "") << "$curve" << c << " using 1:2 with "
      << (curves[c].step.size() < 50 ? "linespoints pt 7 ps 0.8" : "lines") << " lw 2 title "
      << gnuplot_quote(names[c]);
  s << "\n";
  return s.str();
}

// A child process with its standard streams on pipes; closes what it owns.
struct Pipes {
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  Pipes() {
    if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC))
      throw Error(std::string("cannot create a pipe for gnuplot: ") + std::strerror(errno));
  }
  ~Pipes() {
    for (int* p : {in, out, err})
      for (int i = 0; i < 2; ++i) close_end(p[i]);
  }
  static void close_end(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

// Starts gnuplot on `pipes` (found on PATH, no shell), SIGPIPE back to its default.
pid_t spawn_gnuplot(Pipes& pipes) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipes.in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, pipes.out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipes.err[1], 2);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF);
  char name[] = "gnuplot";
  char* argv[] = {name, nullptr};
  pid_t pid = -1;
  const int error = ::posix_spawnp(&pid, "gnuplot", &actions, &attributes, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (error == ENOENT)
    throw Error(
        "gnuplot not found on PATH: strata plot draws with it (Debian: apt-get install "
        "gnuplot-nox; scripts/setup.sh installs it)");
  if (error) throw Error(std::string("cannot start gnuplot: ") + std::strerror(error));
  Pipes::close_end(pipes.in[0]);
  Pipes::close_end(pipes.out[1]);
  Pipes::close_end(pipes.err[1]);
  return pid;
}

// Feeds `script` to the child's stdin while collecting its stdout and stderr, until
// both close or the deadline passes (then false).
bool exchange(Pipes& pipes, const std::string& script, std::string& out, std::string& err,
              std::chrono::steady_clock::time_point deadline) {
  ::fcntl(pipes.in[1], F_SETFL, O_NONBLOCK);
  std::size_t written = 0;
  char buffer[65536];
  while (pipes.out[0] >= 0 || pipes.err[0] >= 0) {
    if (pipes.in[1] >= 0 && written == script.size()) Pipes::close_end(pipes.in[1]);
    pollfd fds[3] = {
        {pipes.in[1], POLLOUT, 0}, {pipes.out[0], POLLIN, 0}, {pipes.err[0], POLLIN, 0}};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    if (::poll(fds, 3, int(std::min<long long>(left.count(), 1000))) < 0 && errno != EINTR)
      throw Error(std::string("waiting for gnuplot: ") + std::strerror(errno));
    if (fds[0].revents & (POLLOUT | POLLERR | POLLHUP)) {
      const ssize_t n = ::write(pipes.in[1], script.data() + written, script.size() - written);
      if (n > 0) written += std::size_t(n);
      if (n < 0 && errno != EAGAIN && errno != EINTR) written = script.size();  // gnuplot quit
    }
    int* readers[2] = {&pipes.out[0], &pipes.err[0]};
    std::string* sinks[2] = {&out, &err};
    for (int r = 0; r < 2; ++r) {
      if (!(fds[r + 1].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::read(*readers[r], buffer, sizeof buffer);
      if (n > 0) sinks[r]->append(buffer, std::size_t(n));
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) Pipes::close_end(*readers[r]);
    }
  }
  return true;
}

std::string last_line(const std::string& text) {
  std::istringstream in(text);
  std::string line, last;
  while (std::getline(in, line))
    if (line.find_first_not_of(" \t\r^") != std::string::npos) last = line;
  return last;
}

bool is_png(const std::string& bytes) {
  return bytes.size() > 8 && bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0;
}

// gnuplot's PNG for `script`; killed once `timeout_seconds` have passed.
std::string run_gnuplot(const std::string& script, double timeout_seconds) {
  Pipes pipes;
  const pid_t pid = spawn_gnuplot(pipes);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<long long>(timeout_seconds * 1000));
  std::string out, err;
  bool finished = false;
  try {
    finished = exchange(pipes, script, out, err, deadline);
  } catch (...) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    throw;
  }
  if (!finished) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::ostringstream limit;
  limit << timeout_seconds;
  if (!finished) throw Error("gnuplot did not finish within " + limit.str() + " s: killed it");
  const std::string why = last_line(err);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw Error("gnuplot failed (" +
                (WIFEXITED(status)
                     ? "exit status " + std::to_string(WEXITSTATUS(status))
                     : std::string("killed by signal ") + std::to_string(WTERMSIG(status))) +
                ")" + (why.empty() ? std::string() : ": " + why));
  if (!is_png(out))
    throw Error("gnuplot wrote no PNG" + (why.empty() ? std::string() : ": " + why));
  return out;
}

// `bytes` into `path` through a temporary file beside it, renamed over it.
void write_atomically(const std::string& path, const std::string& bytes) {
  const fs::path target(path);
  std::string name = target.filename().string();
  name.insert(0, 1, '.');
  name.append(".strata-tmp-").append(std::to_string(::getpid()));
  const fs::path temp = target.parent_path() / name;
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path + ": cannot write: " + std::strerror(errno));
    out.write(bytes.data(), std::streamsize(bytes.size()));
    out.close();
    if (!out) {
      std::error_code ec;
      fs::remove(temp, ec);
      throw Error(path + ": cannot write: " + std::strerror(errno));
    }
  }
  std::error_code ec;
  fs::rename(temp, target, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    throw Error(path + ": cannot write: " + ec.message());
  }
}

}  // namespace

int command_plot(const PlotArgs& args) {
  std::error_code ec;
  if (!fs::is_directory(args.dir, ec)) throw Error(args.dir + ": no such run directory");
  const fs::path dir(args.dir);
  const std::string steps = (dir / "steps.csv").string(), metrics = (dir / "metrics.csv").string();
  const bool per_step = fs::exists(steps, ec);
  if (!per_step && !fs::exists(metrics, ec))
    throw Error(args.dir + ": no steps.csv or metrics.csv to plot (is it a run directory?)");
  std::vector<LossCurve> curves = {read_loss_curve(per_step ? steps : metrics)};
  if (curves[0].step.empty())
    throw Error(curves[0].source + ": no rows with a finite loss to plot");
  std::vector<std::string> names = {per_step ? "training loss" : "training loss (per epoch)"};
  const std::string validation = (dir / "validation.csv").string();
  if (fs::exists(validation, ec)) {
    curves.push_back(read_loss_curve(validation));
    names.emplace_back("validation loss");
    if (curves.back().step.empty()) curves.pop_back();  // no evaluation yet
  }
  fs::path named = fs::absolute(dir, ec).lexically_normal();
  if (named.filename().empty()) named = named.parent_path();  // "runs/x/"
  const std::string title = named.filename().string();
  const std::string out = args.out.empty() ? (dir / "loss.png").string() : args.out;
  write_atomically(
      out, run_gnuplot(gnuplot_script(curves, names, title + ": loss"), args.timeout_seconds));
  std::cout << "plotted " << curves[0].step.size() << " training points ("
            << fs::path(curves[0].source).filename().string() << ")";
  if (curves.size() > 1)
    std::cout << " and " << curves[1].step.size() << " validation points (validation.csv)";
  std::cout << " to " << out << "\n";
  for (const LossCurve& c : curves)
    if (c.skipped)
      std::cerr << "note: " << c.source << ": " << c.skipped
                << " row(s) with a non-finite loss left out\n";
  return 0;
}

}  // namespace strata
