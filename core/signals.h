// SIGINT / SIGTERM as a request to stop, polled by long-running commands (training checkpoints and
// stops at the next update boundary; servers drain). One process-wide handler: a flag, nothing else
// (async-signal-safe), installed for the lifetime of a StopSignals object. A process-wide handler
// (rather than sigwait with blocked signals) also works when libraries started threads of their
// own before we could block the signals in them (OpenBLAS, torch).
#pragma once

#include <csignal>

namespace conductor {

class StopSignals {
 public:
  // Installs the handler for SIGINT and SIGTERM (and clears an earlier request); with
  // ignore_sigpipe, SIGPIPE is ignored too (a vanished client is an error code, never a dead server).
  explicit StopSignals(bool ignore_sigpipe = false);
  // Restores the previous handlers.
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The signal received (SIGINT or SIGTERM), or 0.
  static int received();
  // Blocks until a signal arrives; returns it.
  static int wait();

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
  struct sigaction old_pipe_ {};
  bool pipe_ = false;
};

}  // namespace conductor
