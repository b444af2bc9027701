// Data-parallel training over MPI: the process group and the gradient all-reduce.
//
// Distributed::world() is the group this process trains in: MPI_COMM_WORLD when Strata
// was built with MPI (STRATA_WITH_MPI) and the process was started by mpirun (its
// environment says so), else a group of one in which every call below is a no-op or an
// identity. So a single process, with or without MPI built in, behaves as before.
//
// Threads: only the thread that called init() calls MPI (MPI_THREAD_FUNNELED); the
// thread pool's workers never do.
//
// Faults: every wait on the other ranks polls (MPI_Test) instead of blocking, so that
// a rank that died is reported instead of hanging: when mpirun, having seen a rank die,
// sends the others SIGTERM (Open MPI 4.1 does so about a second later, and SIGKILL a
// second after that), or when no rank answered for timeout() seconds, the waiting rank
// prints one `strata: error: rank R: ...` line naming the ranks it found gone (local
// ones, by their process id) and exits 1 at once, without MPI_Finalize. Only rank 0
// writes files, and checkpoints are atomic, so the last checkpoint stays intact.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "framework/parameter.hpp"

namespace strata {

class Distributed {
 public:
  // The process's group; initialises MPI on first use when started by mpirun.
  static Distributed& world();
  // Whether this build can run under MPI.
  static bool built_with_mpi();
  // Ends MPI cleanly (main() at exit; later calls and a group of one: nothing).
  static void finalize();

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool parallel() const { return size_ > 1; }

  // Seconds a rank waits for the others before it gives up (STRATA_MPI_TIMEOUT, default
  // 600: a step's load imbalance can be long on a large model).
  double timeout() const { return timeout_; }
  void set_timeout(double seconds) { timeout_ = seconds; }
  // What the fault message adds (the trainer: "at step N; the checkpoint of step M in
  // DIR is intact").
  void set_fault_context(std::string context) { fault_context_ = std::move(context); }

  // Every rank passes its hash of `what` (a config, data, parameters); all ranks throw
  // the same Error when any rank's differs from rank 0's.
  void check_same(std::uint64_t hash, const std::string& what);
  // values[i] = the sum over ranks of values[i] (in place; small arrays).
  void sum(double* values, std::size_t n);

  // Non-blocking sum over ranks of a float buffer (in place): returns a handle for wait().
  std::size_t start_sum(float* values, std::size_t n);
  std::size_t start_sum(double* values, std::size_t n);
  // Lets pending sums progress without waiting (MPI progresses only inside its calls).
  void progress();
  // Waits for every pending sum (see Faults above); returns the seconds spent waiting.
  double wait_all();

  // Totals since the start, for the benchmark: bytes this rank handed to sums, seconds
  // it spent in wait_all().
  double bytes_summed() const { return bytes_summed_; }
  double seconds_waited() const { return seconds_waited_; }

  // Ends the process (all ranks) with `strata: error: rank R: message` and status 1.
  [[noreturn]] void fail(const std::string& message) const;

  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

 private:
  Distributed();
  ~Distributed();
  std::string gone_ranks() const;
  [[noreturn]] void peers_lost(const std::string& why) const;

  int rank_ = 0, size_ = 1;
  double timeout_ = 600;
  double bytes_summed_ = 0, seconds_waited_ = 0;
  std::string fault_context_;
  std::vector<long> pids_;          // every rank's process id
  std::vector<std::string> hosts_;  // and host name
  struct Pending;                   // the MPI requests (mpi.h stays out of headers)
  std::unique_ptr<Pending> pending_;
};

// 64-bit FNV-1a of raw bytes, continued from `hash`.
std::uint64_t fnv1a(const void* data, std::size_t bytes,
                    std::uint64_t hash = 0xcbf29ce484222325ull);
// The hash of every parameter's name, shape and value bits, in order.
std::uint64_t hash_parameters(const std::vector<Parameter<float>*>& parameters);

// Averaging gradients across ranks during backward, in a few large buckets.
//
// The model's backward reports groups of parameters whose gradients are final, in a
// fixed order (Model::backward's completed hook: last layer first). The groups are cut
// into buckets of at least `bucket_bytes`; when a bucket's last group is done its
// gradients are packed into one contiguous buffer and their sum over ranks started
// (MPI_Iallreduce), while the earlier layers are still in backward. finish() starts
// what is left, waits, and writes the sums back into the gradients. Every rank cuts the
// same buckets (the groups' sizes are the model's), so the collectives match.
class GradientBuckets {
 public:
  GradientBuckets(std::vector<std::vector<Parameter<float>*>> groups_in_order,
                  std::size_t bucket_bytes);

  // The next group's gradients are final (call in the order given).
  void completed(const std::vector<Parameter<float>*>& group);
  // Every group at once with its current gradients (a rank without rows this step).
  void complete_all();
  // Waits for every bucket and writes the summed gradients back. Returns the seconds
  // spent waiting.
  double finish();

  std::size_t buckets() const { return bucket_end_.size(); }
  std::size_t bytes_per_step() const { return buffer_.size() * sizeof(float); }

 private:
  void start_bucket(std::size_t b);

  std::vector<std::vector<Parameter<float>*>> groups_;
  std::vector<std::size_t> bucket_end_;    // one past each bucket's last group
  std::vector<std::size_t> group_offset_;  // each group's start in buffer_ (size + 1)
  std::vector<float> buffer_;
  std::size_t next_group_ = 0, next_bucket_ = 0;
};

}  // namespace strata
