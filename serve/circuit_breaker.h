// A per-provider circuit breaker: after `failures` consecutive failed calls the provider is "open"
// (not called, and shown to the policy as an unavailable worker, so the conductor routes around it)
// for `cooldown_s`; then "half-open": exactly one call goes out as a probe. A successful probe
// closes the circuit; a failed one opens it for another cooldown.
//
// What counts as a failure is the caller's choice (the gateway counts every upstream error except a
// bad request, which says nothing about the provider's health). Results of calls that started
// before the circuit opened do not move it. Thread-safe; time is passed in, so tests drive a clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

#include "core/config.h"

namespace conductor::serve {

struct CircuitBreakerConfig {
  int failures = 5;         // consecutive failures that open the circuit; 0 = never open
  double cooldown_s = 30.0; // open -> half-open after this long
  static CircuitBreakerConfig parse(ConfigReader r);
};

class CircuitBreaker {
 public:
  using Clock = std::chrono::steady_clock;
  enum class State { kClosed = 0, kOpen = 1, kHalfOpen = 2 };

  explicit CircuitBreaker(CircuitBreakerConfig config = {}) : config_(config) {}

  // Whether a new call could go out now (closed, or half-open with the probe not yet taken).
  bool available(Clock::time_point now) const;
  // Reserves a call: true when closed, or when half-open and the probe is free (then *probe = true:
  // report its result with probe = true). False when open, or half-open with the probe out.
  bool try_acquire(Clock::time_point now, bool* probe);
  void on_success(bool probe);
  void on_failure(Clock::time_point now, bool probe);
  // A probe that was acquired but never sent (e.g. the request was refused locally).
  void release_probe();

  State state(Clock::time_point now) const;
  uint64_t opens() const;                 // times the circuit opened
  int consecutive_failures() const;

 private:
  void advance(Clock::time_point now) const;  // open -> half-open when the cooldown is over

  CircuitBreakerConfig config_;
  mutable std::mutex mu_;
  mutable State state_ = State::kClosed;
  Clock::time_point opened_at_{};
  bool probe_out_ = false;
  int consecutive_ = 0;
  uint64_t opens_ = 0;
};

const char* circuit_state_name(CircuitBreaker::State s);  // "closed" | "open" | "half_open"

}  // namespace conductor::serve
