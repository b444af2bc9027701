#include "framework/distributed.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <thread>

#include "framework/errors.hpp"
#include "framework/signals.hpp"

#ifdef STRATA_HAVE_MPI
#include <mpi.h>
#endif

namespace strata {

namespace {

// mpirun's environment (Open MPI, then PMIx and PMI launchers such as srun or MPICH's).
int launcher_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"})
    if (const char* value = std::getenv(name)) return std::max(1, std::atoi(value));
  return 1;
}

double timeout_from_environment() {
  const char* value = std::getenv("STRATA_MPI_TIMEOUT");
  if (!value) return 600;
  char* end = nullptr;
  const double seconds = std::strtod(value, &end);
  if (end == value || *end || !(seconds > 0 && seconds <= 1e6))
    throw Error(std::string("STRATA_MPI_TIMEOUT: must be a number of seconds in (0, 1e6], got \"") +
                value + "\"");
  return seconds;
}

using Clock = std::chrono::steady_clock;

[[maybe_unused]] std::string hex16(std::uint64_t value) {
  std::ostringstream out;
  out << std::hex << std::setw(16) << std::setfill('0') << value;
  return out.str();
}

// After a stop signal a wait gets this long to finish before the rank gives up: mpirun
// sends SIGKILL about a second after its SIGTERM.
constexpr double kGraceAfterSignal = 0.5;

}  // namespace

#ifdef STRATA_HAVE_MPI
struct Distributed::Pending {
  std::vector<MPI_Request> requests;
};
#else
struct Distributed::Pending {};
#endif

bool Distributed::built_with_mpi() {
#ifdef STRATA_HAVE_MPI
  return true;
#else
  return false;
#endif
}

Distributed& Distributed::world() {
  static Distributed group;
  return group;
}

Distributed::~Distributed() = default;

#ifdef STRATA_HAVE_MPI

Distributed::Distributed() : timeout_(timeout_from_environment()), pending_(new Pending) {
  if (launcher_size() <= 1) return;  // not under mpirun: a group of one, MPI untouched
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  // Who is who, for naming a rank that died.
  long pid = long(::getpid());
  pids_.resize(std::size_t(size_));
  MPI_Allgather(&pid, 1, MPI_LONG, pids_.data(), 1, MPI_LONG, MPI_COMM_WORLD);
  char host[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  MPI_Get_processor_name(host, &length);
  std::vector<char> hosts(std::size_t(size_) * MPI_MAX_PROCESSOR_NAME);
  MPI_Allgather(host, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, hosts.data(), MPI_MAX_PROCESSOR_NAME,
                MPI_CHAR, MPI_COMM_WORLD);
  for (int r = 0; r < size_; ++r)
    hosts_.emplace_back(hosts.data() + std::size_t(r) * MPI_MAX_PROCESSOR_NAME);
}

void Distributed::finalize() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Finalize();
}

void Distributed::check_same(std::uint64_t hash, const std::string& what) {
  if (!parallel()) return;
  std::vector<unsigned long long> all(static_cast<std::size_t>(size_));
  const unsigned long long mine = hash;
  MPI_Allgather(&mine, 1, MPI_UNSIGNED_LONG_LONG, all.data(), 1, MPI_UNSIGNED_LONG_LONG,
                MPI_COMM_WORLD);
  std::string differ;
  int count = 0;
  for (std::size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0])
      differ += (count++ ? ", " : "") + std::to_string(r) + " (" + hex16(all[r]) + ")";
  if (count)
    throw Error(what + " differ between ranks: rank 0 has " + hex16(all[0]) + ", rank" +
                (count > 1 ? "s " : " ") + differ);
}

void Distributed::sum(double* values, std::size_t n) {
  if (!parallel()) return;
  start_sum(values, n);
  wait_all();
}

std::size_t Distributed::start_sum(float* values, std::size_t n) {
  if (!parallel()) return 0;
  pending_->requests.emplace_back();
  bytes_summed_ += double(n * sizeof(float));
  MPI_Iallreduce(MPI_IN_PLACE, values, int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                 &pending_->requests.back());
  return pending_->requests.size() - 1;
}

std::size_t Distributed::start_sum(double* values, std::size_t n) {
  if (!parallel()) return 0;
  pending_->requests.emplace_back();
  bytes_summed_ += double(n * sizeof(double));
  MPI_Iallreduce(MPI_IN_PLACE, values, int(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD,
                 &pending_->requests.back());
  return pending_->requests.size() - 1;
}

void Distributed::progress() {
  if (pending_->requests.empty()) return;
  int done = 0;
  MPI_Testall(int(pending_->requests.size()), pending_->requests.data(), &done,
              MPI_STATUSES_IGNORE);
  if (done) pending_->requests.clear();
}

double Distributed::wait_all() {
  const auto start = Clock::now();
  auto signalled_at = Clock::time_point::max();
  for (std::size_t spins = 0; !pending_->requests.empty(); ++spins) {
    progress();
    if (pending_->requests.empty()) break;
    const auto now = Clock::now();
    if (StopSignals::requested() && signalled_at == Clock::time_point::max()) signalled_at = now;
    if (std::chrono::duration<double>(now - signalled_at).count() > kGraceAfterSignal)
      peers_lost(std::string("stopped by ") + StopSignals::name(StopSignals::received()) +
                 " while waiting for the other ranks");
    if (std::chrono::duration<double>(now - start).count() > timeout_)
      peers_lost("no answer from the other ranks for " + std::to_string(int(timeout_)) +
                 " s (STRATA_MPI_TIMEOUT)");
    // Spin briefly (a late rank is usually microseconds away), then let the other
    // ranks and threads have the core.
    if (spins > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  const double waited = std::chrono::duration<double>(Clock::now() - start).count();
  seconds_waited_ += waited;
  return waited;
}

void Distributed::fail(const std::string& message) const {
  std::cout << std::flush;
  std::fprintf(stderr, "strata: error: rank %d: %s\n", rank_, message.c_str());
  std::fflush(stderr);
  if (parallel()) MPI_Abort(MPI_COMM_WORLD, 1);
  std::_Exit(1);
}

#else  // without MPI: a group of one

Distributed::Distributed() : timeout_(timeout_from_environment()), pending_(new Pending) {
  if (launcher_size() > 1)
    throw Error("started by mpirun with " + std::to_string(launcher_size()) +
                " ranks, but this strata was built without MPI: every rank would train alone "
                "(rebuild with libopenmpi-dev installed, or -DSTRATA_WITH_MPI=ON)");
}
void Distributed::finalize() {}
void Distributed::check_same(std::uint64_t, const std::string&) {}
void Distributed::sum(double*, std::size_t) {}
std::size_t Distributed::start_sum(float*, std::size_t) { return 0; }
std::size_t Distributed::start_sum(double*, std::size_t) { return 0; }
void Distributed::progress() {}
double Distributed::wait_all() { return 0; }
void Distributed::fail(const std::string& message) const {
  std::cout << std::flush;
  std::fprintf(stderr, "strata: error: %s\n", message.c_str());
  std::_Exit(1);
}

#endif

// The ranks on this host whose process is gone (a remote one cannot be checked here).
std::string Distributed::gone_ranks() const {
  std::string gone;
  for (int r = 0; r < size_ && std::size_t(r) < pids_.size(); ++r) {
    if (r == rank_ || hosts_[std::size_t(r)] != hosts_[std::size_t(rank_)]) continue;
    if (::kill(pid_t(pids_[std::size_t(r)]), 0) == 0 || errno != ESRCH) continue;
    gone += (gone.empty() ? "" : ", ") + std::to_string(r) + " (pid " +
            std::to_string(pids_[std::size_t(r)]) + " on " + hosts_[std::size_t(r)] + ")";
  }
  return gone;
}

// Another rank died or hangs: one line naming it where possible, then exit 1 at once
// (MPI_Finalize would wait for the dead rank).
void Distributed::peers_lost(const std::string& why) const {
  const std::string gone = gone_ranks();
  std::string message = why;
  message += gone.empty() ? std::string(" (no rank on this host has died: see mpirun's report)")
                          : "; rank " + gone + " has died";
  if (!fault_context_.empty()) message += "; " + fault_context_;
  std::cout << std::flush;
  std::fprintf(stderr, "strata: error: rank %d: %s\n", rank_, message.c_str());
  std::fflush(stderr);
  std::_Exit(1);
}

std::uint64_t fnv1a(const void* data, std::size_t bytes, std::uint64_t hash) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < bytes; ++i) hash = (hash ^ p[i]) * 0x100000001b3ull;
  return hash;
}

std::uint64_t hash_parameters(const std::vector<Parameter<float>*>& parameters) {
  std::uint64_t hash = fnv1a(nullptr, 0);
  for (const Parameter<float>* p : parameters) {
    hash = fnv1a(p->name.data(), p->name.size(), hash);
    for (std::size_t extent : p->value.shape()) hash = fnv1a(&extent, sizeof extent, hash);
    hash = fnv1a(p->value.data(), p->value.size() * sizeof(float), hash);
  }
  return hash;
}

GradientBuckets::GradientBuckets(std::vector<std::vector<Parameter<float>*>> groups_in_order,
                                 std::size_t bucket_bytes)
    : groups_(std::move(groups_in_order)) {
  std::size_t offset = 0, bucket_start = 0;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    group_offset_.push_back(offset);
    for (const Parameter<float>* p : groups_[g]) offset += p->grad.size();
    if ((offset - bucket_start) * sizeof(float) >= bucket_bytes || g + 1 == groups_.size()) {
      bucket_end_.push_back(g + 1);
      bucket_start = offset;
    }
  }
  group_offset_.push_back(offset);
  buffer_.resize(offset);
}

void GradientBuckets::completed(const std::vector<Parameter<float>*>& group) {
  if (next_group_ >= groups_.size() || group != groups_[next_group_])
    throw Error("GradientBuckets: parameter groups completed out of the model's order");
  float* out = buffer_.data() + group_offset_[next_group_];
  for (const Parameter<float>* p : group) out = std::copy(p->grad.begin(), p->grad.end(), out);
  ++next_group_;
  if (next_group_ == bucket_end_[next_bucket_]) start_bucket(next_bucket_++);
  Distributed::world().progress();
}

void GradientBuckets::complete_all() {
  while (next_group_ < groups_.size()) completed(groups_[next_group_]);
}

void GradientBuckets::start_bucket(std::size_t b) {
  const std::size_t first = b == 0 ? 0 : bucket_end_[b - 1];
  const std::size_t begin = group_offset_[first], end = group_offset_[bucket_end_[b]];
  Distributed::world().start_sum(buffer_.data() + begin, end - begin);
}

double GradientBuckets::finish() {
  complete_all();  // groups the model never reported (none in a full backward)
  const double waited = Distributed::world().wait_all();
  const float* in = buffer_.data();
  for (const auto& group : groups_)
    for (Parameter<float>* p : group) {
      std::copy(in, in + p->grad.size(), p->grad.begin());
      in += p->grad.size();
    }
  next_group_ = next_bucket_ = 0;
  return waited;
}

}  // namespace strata
