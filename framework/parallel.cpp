#include "framework/parallel.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "framework/blas.hpp"
#include "framework/denormals.hpp"

namespace strata {

namespace {

thread_local bool t_in_task = false;

inline void cpu_relax() {
#ifdef STRATA_HAS_MXCSR
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// How long an idle worker polls before it sleeps (C++20 atomic wait, a futex): long
// enough to catch the next job of a burst (the gradient norm, then Adam; the products
// of one backward pass), short enough that between bursts it leaves the core to
// others. Waking a sleeping worker costs tens of microseconds on this VM; the caller
// never waits for that, it runs the tasks itself meanwhile.
constexpr auto kSpinBeforeSleep = std::chrono::microseconds(200);
// A gap this long between two polls means the worker was descheduled: the machine
// has more runnable threads than cores (other processes), and a polling worker would
// take time slices from the caller it is meant to help (measured: a 2-thread recipe
// ran 1.6x slower than 1 thread while another process kept one of the two cores
// busy). The worker then sleeps at once.
constexpr auto kPreemptedGap = std::chrono::microseconds(100);

// Polls until kSpinBeforeSleep has passed or the thread was preempted. Every 64 polls
// it also yields: with a runnable thread waiting for this core, that one runs.
struct SpinBudget {
  using Clock = std::chrono::steady_clock;
  Clock::time_point start = Clock::now(), last = start;
  unsigned calls = 0;
  bool exhausted() {
    if ((++calls & 63u) != 0) return false;
    std::this_thread::yield();
    const Clock::time_point now = Clock::now();
    const bool preempted = now - last > kPreemptedGap;
    last = now;
    return preempted || now - start > kSpinBeforeSleep;
  }
};

}  // namespace

// Job protocol. `claim` packs (generation << 32 | next task index): a task is taken
// by a compare-exchange that also checks the generation, so a worker that wakes up
// late, or reads the job fields while the caller rewrites them for the next job, can
// never take a task of a job it did not read. The caller retires a job only when
// `done` reaches its task count, and rewrites the fields only after moving `claim`
// to the next generation.
struct ThreadPool::State {
  std::vector<std::thread> workers;
  std::atomic<std::uint32_t> generation{0};
  std::atomic<std::uint64_t> claim{0};
  std::atomic<std::size_t> done{0};
  std::atomic<void (*)(void*, std::size_t)> call{nullptr};
  std::atomic<void*> context{nullptr};
  std::atomic<std::size_t> tasks{0};
  std::atomic<unsigned> fp_control{0};
  std::atomic<int> sleepers{0};
  std::atomic<bool> stop{false};
  std::mutex error_mutex;
  std::exception_ptr error;

  // Runs tasks of job `gen` until none is left.
  void work(std::uint32_t gen, void (*fn)(void*, std::size_t), void* ctx, std::size_t count) {
    const ThreadPool::TaskScope in_task;
    for (;;) {
      std::uint64_t cur = claim.load(std::memory_order_acquire);
      std::size_t index;
      for (;;) {
        if (std::uint32_t(cur >> 32) != gen) return;
        index = std::size_t(cur & 0xffffffffu);
        if (index >= count) return;
        if (claim.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel)) break;
      }
      try {
        fn(ctx, index);
      } catch (...) {
        const std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
      done.fetch_add(1, std::memory_order_release);
    }
  }

  void worker_loop() {
    std::uint32_t seen = generation.load(std::memory_order_acquire);
    for (;;) {
      std::uint32_t gen;
      SpinBudget spin;
      while ((gen = generation.load(std::memory_order_acquire)) == seen) {
        if (stop.load(std::memory_order_relaxed)) return;
        if (!spin.exhausted()) {
          cpu_relax();
          continue;
        }
        sleepers.fetch_add(1);
        generation.wait(seen);  // returns at once if it changed since the load above
        sleepers.fetch_sub(1);
        spin = SpinBudget();
      }
      if (stop.load()) return;
      seen = gen;
      const unsigned fp = fp_control.load(std::memory_order_relaxed);
      auto* fn = call.load(std::memory_order_relaxed);
      void* ctx = context.load(std::memory_order_relaxed);
      const std::size_t count = tasks.load(std::memory_order_relaxed);
      // Pairs with the caller's release fence: if these fields are already the next
      // job's, the claim loaded in work() is too, and its generation check fails.
      std::atomic_thread_fence(std::memory_order_acquire);
      if (strata::fp_control() != fp) set_fp_control(fp);
      work(gen, fn, ctx, count);
    }
  }
};

ThreadPool& ThreadPool::global() {
  static ThreadPool pool(1);
  return pool;
}

ThreadPool::ThreadPool(int threads) : state_(new State) { set_threads(threads); }

ThreadPool::~ThreadPool() {
  set_threads(1);
  delete state_;
}

void ThreadPool::set_threads(int threads) {
  if (threads < 1) threads = 1;
  State& s = *state_;
  if (int(s.workers.size()) + 1 == threads) {
    threads_ = threads;
    return;
  }
  if (!s.workers.empty()) {
    s.stop.store(true);
    s.generation.fetch_add(1);
    s.generation.notify_all();
    for (std::thread& t : s.workers) t.join();
    s.workers.clear();
    s.stop.store(false);
  }
  threads_ = threads;
  for (int i = 1; i < threads; ++i) s.workers.emplace_back([&s] { s.worker_loop(); });
}

bool ThreadPool::in_parallel_task() { return t_in_task; }

ThreadPool::TaskScope::TaskScope() : saved(t_in_task) { t_in_task = true; }
ThreadPool::TaskScope::~TaskScope() { t_in_task = saved; }

void ThreadPool::dispatch(std::size_t tasks, void (*call)(void*, std::size_t), void* context) {
  State& s = *state_;
  const std::uint32_t gen = s.generation.load(std::memory_order_relaxed) + 1;
  // First close the previous generation's claims, then publish the job, then wake.
  s.claim.store(std::uint64_t(gen) << 32, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_release);
  s.call.store(call, std::memory_order_relaxed);
  s.context.store(context, std::memory_order_relaxed);
  s.tasks.store(tasks, std::memory_order_relaxed);
  s.fp_control.store(fp_control(), std::memory_order_relaxed);
  s.done.store(0, std::memory_order_relaxed);
  s.generation.store(gen, std::memory_order_seq_cst);
  if (s.sleepers.load(std::memory_order_seq_cst) > 0) s.generation.notify_all();

  s.work(gen, call, context, tasks);
  for (SpinBudget spin; s.done.load(std::memory_order_acquire) < tasks;)
    if (!spin.exhausted())
      cpu_relax();
    else
      std::this_thread::yield();  // the worker holding a task was descheduled
  if (s.error) {
    std::exception_ptr error;
    std::swap(error, s.error);
    std::rethrow_exception(error);
  }
}

ThreadingScope::ThreadingScope(int threads)
    : saved_pool_(ThreadPool::global().threads()), saved_blas_(blas_threads()) {
  ThreadPool::global().set_threads(threads);
  set_blas_threads(1);
}

ThreadingScope::~ThreadingScope() {
  ThreadPool::global().set_threads(saved_pool_);
  set_blas_threads(saved_blas_);
}

}  // namespace strata
