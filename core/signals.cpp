#include "core/signals.h"

#include <atomic>
#include <chrono>
#include <thread>

namespace conductor {

namespace {
std::atomic<int> g_stop_signal{0};
extern "C" void conductor_on_stop_signal(int sig) { g_stop_signal.store(sig); }
}  // namespace

StopSignals::StopSignals(bool ignore_sigpipe) : pipe_(ignore_sigpipe) {
  g_stop_signal.store(0);
  struct sigaction sa {};
  sa.sa_handler = conductor_on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int_);
  sigaction(SIGTERM, &sa, &old_term_);
  if (pipe_) {
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &old_pipe_);
  }
}

StopSignals::~StopSignals() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
  if (pipe_) sigaction(SIGPIPE, &old_pipe_, nullptr);
}

int StopSignals::received() { return g_stop_signal.load(); }

int StopSignals::wait() {
  while (g_stop_signal.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return g_stop_signal.load();
}

}  // namespace conductor
