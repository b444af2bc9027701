#include "framework/signals.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "framework/errors.hpp"

namespace strata {

namespace {

// A lock-free atomic is async-signal-safe to read and write from a handler.
std::atomic<int> g_received{0};
std::atomic<bool> g_installed{false};
static_assert(std::atomic<int>::is_always_lock_free);

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};
struct sigaction g_previous[sizeof(kSignals) / sizeof(kSignals[0])];

void say(const char* text) {  // write(2) is async-signal-safe; stdio is not
  const ssize_t ignored = ::write(STDERR_FILENO, text, std::strlen(text));
  (void)ignored;
}

extern "C" void on_stop_signal(int signal) {
  int none = 0;
  if (g_received.compare_exchange_strong(none, signal)) {
    say("\nstrata: stopping after the current step and saving a checkpoint "
        "(signal again to quit at once)\n");
    return;
  }
  // The second one: die by it now. A checkpoint being written is abandoned in its
  // temporary directory; the previous one stays in place (see save_checkpoint).
  say("\nstrata: quitting at once; the previous checkpoint is kept\n");
  ::signal(signal, SIG_DFL);
  ::raise(signal);  // blocked while this handler runs: delivered as it returns
}

}  // namespace

StopSignals::StopSignals() {
  if (g_installed.exchange(true)) throw Error("StopSignals: already installed");
  g_received = 0;
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // a write interrupted by the first signal carries on
  for (std::size_t i = 0; i < std::size(kSignals); ++i)
    ::sigaction(kSignals[i], &action, &g_previous[i]);
}

StopSignals::~StopSignals() {
  for (std::size_t i = 0; i < std::size(kSignals); ++i)
    ::sigaction(kSignals[i], &g_previous[i], nullptr);
  g_installed = false;
}

int StopSignals::received() { return g_received.load(); }

const char* StopSignals::name(int signal) {
  switch (signal) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "a signal";
  }
}

}  // namespace strata
