// A small persistent thread pool for splitting one training step's work.
//
// The work items of a step are tiny (a 20x128x128 product takes ~5 us), so the pool
// is built for latency: its workers spin for a while on an atomic generation counter
// before sleeping (C++20 atomic wait), and the calling thread always takes part, so
// a job never waits for a sleeping worker to wake up. With threads() == 1 everything
// runs inline on the caller, exactly as plain code would.
//
// Determinism: the pool only decides WHO runs a task, never how work is split; the
// callers split work at boundaries that do not depend on the number of threads (nor on
// whether the work runs inside a task), so a computation gives the same bits with 1 or
// N threads (matrix products too: blas.hpp).
//
// Workers run each job with the caller's floating-point control word (flush-to-zero,
// see denormals.hpp). OpenBLAS keeps its own pool; the trainer sets it to one thread
// while this pool splits the work (two pools on two cores only fight).
//
// Nested use: run() called from inside a task executes inline (in_parallel_task()).
#pragma once

#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <utility>

namespace strata {

class ThreadPool {
 public:
  // The process-wide pool, created with 1 thread (no workers).
  static ThreadPool& global();

  explicit ThreadPool(int threads = 1);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Total threads taking part in a job, the caller included (>= 1). Changing it joins
  // or starts workers; not to be called while a job runs.
  void set_threads(int threads);
  int threads() const { return threads_; }

  // Calls fn(i) for every i in [0, tasks), spread over the threads; returns when all
  // are done. fn must be safe to call concurrently for different i.
  template <class F>
  void run(std::size_t tasks, F&& fn) {
    if (tasks == 0) return;
    if (tasks == 1) {  // as if the caller ran it: products inside may still be shared
      fn(0);
      return;
    }
    if (threads_ <= 1 || in_parallel_task()) {
      const TaskScope scope;
      for (std::size_t i = 0; i < tasks; ++i) fn(i);
      return;
    }
    dispatch(
        tasks, [](void* f, std::size_t i) { (*static_cast<std::remove_reference_t<F>*>(f))(i); },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }

  // Runs a() and b() concurrently (b on a worker when there is one); returns when both
  // are done. Results are those of a(); b() run one after the other.
  template <class A, class B>
  void run2(A&& a, B&& b) {
    run(2, [&](std::size_t i) {
      if (i == 0)
        a();
      else
        b();
    });
  }

  // True while the calling thread executes a task of some pool's job (inline or not).
  static bool in_parallel_task();

 private:
  struct TaskScope {  // marks the calling thread as inside a task, restores on exit
    bool saved;
    TaskScope();
    ~TaskScope();
  };
  struct State;
  void dispatch(std::size_t tasks, void (*call)(void*, std::size_t), void* context);

  int threads_ = 1;
  State* state_ = nullptr;
};

// For one scope, work runs on `threads` threads the way Strata splits it: the global
// pool at `threads`, OpenBLAS at one (its own threads would only contend with the pool
// for the same cores: at 2 threads they made the batch-1 recipe 2x slower). Both are
// restored on exit. Training, generation and the benchmarks run under one.
class ThreadingScope {
 public:
  explicit ThreadingScope(int threads);
  ~ThreadingScope();
  ThreadingScope(const ThreadingScope&) = delete;
  ThreadingScope& operator=(const ThreadingScope&) = delete;

 private:
  int saved_pool_, saved_blas_;
};

// Shorthands for the global pool.
inline int parallel_threads() { return ThreadPool::global().threads(); }
template <class F>
void parallel_for(std::size_t tasks, F&& fn) {
  ThreadPool::global().run(tasks, std::forward<F>(fn));
}
template <class A, class B>
void parallel_invoke(A&& a, B&& b) {
  ThreadPool::global().run2(std::forward<A>(a), std::forward<B>(b));
}

// Calls fn(begin, end) over [0, rows) for row-wise work touching `row_cost` elements
// per row. On the pool in blocks of about 2^14 elements when there are at least 2^16
// elements in all (below that the hand-off costs more than it saves), else in one call.
// The blocks depend on row_cost only, never on the thread count.
template <class F>
void parallel_rows(std::size_t rows, std::size_t row_cost, F&& fn) {
  const std::size_t cost = row_cost ? row_cost : 1;
  if (parallel_threads() <= 1 || rows * cost < (std::size_t(1) << 16)) {
    fn(std::size_t(0), rows);
    return;
  }
  const std::size_t block = std::max<std::size_t>(1, (std::size_t(1) << 14) / cost);
  parallel_for((rows + block - 1) / block,
               [&](std::size_t b) { fn(b * block, std::min(rows, (b + 1) * block)); });
}

}  // namespace strata
