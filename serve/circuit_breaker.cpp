#include "serve/circuit_breaker.h"

namespace conductor::serve {

CircuitBreakerConfig CircuitBreakerConfig::parse(ConfigReader r) {
  CircuitBreakerConfig c;
  c.failures = r.get_in<int>("failures", c.failures, 0, 1000000);
  c.cooldown_s = r.get_in<double>("cooldown_s", c.cooldown_s, 0.0, 86400.0);
  r.finish();
  return c;
}

const char* circuit_state_name(CircuitBreaker::State s) {
  switch (s) {
    case CircuitBreaker::State::kClosed: return "closed";
    case CircuitBreaker::State::kOpen: return "open";
    case CircuitBreaker::State::kHalfOpen: return "half_open";
  }
  return "closed";
}

void CircuitBreaker::advance(Clock::time_point now) const {
  if (state_ == State::kOpen && now - opened_at_ >= std::chrono::duration<double>(config_.cooldown_s))
    state_ = State::kHalfOpen;
}

bool CircuitBreaker::available(Clock::time_point now) const {
  std::lock_guard<std::mutex> lk(mu_);
  advance(now);
  return state_ == State::kClosed || (state_ == State::kHalfOpen && !probe_out_);
}

bool CircuitBreaker::try_acquire(Clock::time_point now, bool* probe) {
  std::lock_guard<std::mutex> lk(mu_);
  advance(now);
  *probe = false;
  if (state_ == State::kClosed) return true;
  if (state_ == State::kHalfOpen && !probe_out_) {
    probe_out_ = true;
    *probe = true;
    return true;
  }
  return false;
}

void CircuitBreaker::on_success(bool probe) {
  std::lock_guard<std::mutex> lk(mu_);
  if (probe) {
    probe_out_ = false;
    state_ = State::kClosed;
    consecutive_ = 0;
  } else if (state_ == State::kClosed) {
    consecutive_ = 0;
  }
}

void CircuitBreaker::on_failure(Clock::time_point now, bool probe) {
  std::lock_guard<std::mutex> lk(mu_);
  if (config_.failures <= 0) return;
  if (probe) {
    probe_out_ = false;
    state_ = State::kOpen;
    opened_at_ = now;
    ++opens_;
    return;
  }
  if (state_ != State::kClosed) return;  // a call that started before the circuit opened
  if (++consecutive_ >= config_.failures) {
    state_ = State::kOpen;
    opened_at_ = now;
    ++opens_;
  }
}

void CircuitBreaker::release_probe() {
  std::lock_guard<std::mutex> lk(mu_);
  probe_out_ = false;
}

CircuitBreaker::State CircuitBreaker::state(Clock::time_point now) const {
  std::lock_guard<std::mutex> lk(mu_);
  advance(now);
  return state_;
}

uint64_t CircuitBreaker::opens() const {
  std::lock_guard<std::mutex> lk(mu_);
  return opens_;
}

int CircuitBreaker::consecutive_failures() const {
  std::lock_guard<std::mutex> lk(mu_);
  return consecutive_;
}

}  // namespace conductor::serve
