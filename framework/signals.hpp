// Stopping a long computation cleanly on SIGINT, SIGTERM or SIGHUP.
//
// While a StopSignals is alive, the first of these signals only raises a flag (an
// async-signal-safe atomic) and says on stderr that the process will stop: the
// computation checks `requested()` at points where stopping loses nothing (between
// training steps) and winds down itself. A second signal is an order to quit now: its
// handler restores the default disposition and re-raises it, so the process dies by
// that signal at once (the shell sees 128 + signal). Only one instance at a time.
#pragma once

namespace strata {

class StopSignals {
 public:
  StopSignals();   // installs the handlers (throws Error if one is alive already)
  ~StopSignals();  // restores the previous dispositions
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The first signal received while alive (0: none). Safe from any thread.
  static int received();
  static bool requested() { return received() != 0; }
  // "SIGINT", "SIGTERM", "SIGHUP" (others: "a signal").
  static const char* name(int signal);
};

}  // namespace strata
