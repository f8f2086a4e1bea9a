// Prometheus text-format metrics of the server (exposition format 0.0.4), lock-free on the hot path:
// every counter is a fixed atomic slot chosen at construction (paths, status codes, workers).
//
//   conductor_http_requests_total{path="/v1/route",code="200"}         counter
//   conductor_http_request_duration_seconds_bucket{path=...,le=...}    histogram (+ _sum, _count)
//   conductor_route_decisions_total{action="call:gpt-4"}               counter
//   conductor_worker_calls_total{worker="gpt-4"}                        counter
//   conductor_worker_errors_total{worker="gpt-4",kind="timeout"}       counter
//   conductor_in_flight_requests                                        gauge (from a callback)
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace conductor::serve {

// Kinds of worker call failure counted per worker.
enum class CallFailure { kTimeout = 0, kHttpError = 1, kConnect = 2, kBadResponse = 3 };
constexpr int kCallFailureKinds = 4;
const char* call_failure_name(CallFailure f);

class ServerMetrics {
 public:
  // `paths` are the request paths tracked by name (anything else is "other"); `actions` and
  // `workers` name the decision and worker label values.
  ServerMetrics(std::vector<std::string> paths, std::vector<std::string> actions, std::vector<std::string> workers);

  // Upper bounds of the latency histogram buckets, in seconds (then +Inf).
  static const std::vector<double>& latency_buckets();

  void observe_response(const std::string& path, int status, double seconds);
  void count_decision(int action);
  void count_worker_call(int worker);
  void count_worker_error(int worker, CallFailure kind);
  void set_in_flight_source(std::function<int()> fn) { in_flight_ = std::move(fn); }

  std::string prometheus_text() const;

  // For tests: requests counted for `path` (or "other") with `status`.
  uint64_t requests(const std::string& path, int status) const;

 private:
  static constexpr int kStatusSlots = 600;
  struct PathSlot {
    std::unique_ptr<std::atomic<uint64_t>[]> by_status;   // [kStatusSlots]
    std::unique_ptr<std::atomic<uint64_t>[]> buckets;     // [latency_buckets().size() + 1], non-cumulative
    std::atomic<uint64_t> sum_ns{0};
    std::atomic<uint64_t> count{0};
  };
  int path_index(const std::string& path) const;

  std::vector<std::string> paths_;  // last = "other"
  std::vector<std::unique_ptr<PathSlot>> path_slots_;
  std::vector<std::string> actions_;
  std::unique_ptr<std::atomic<uint64_t>[]> decisions_;
  std::vector<std::string> workers_;
  std::unique_ptr<std::atomic<uint64_t>[]> worker_calls_;
  std::unique_ptr<std::atomic<uint64_t>[]> worker_errors_;  // [workers x kCallFailureKinds]
  std::function<int()> in_flight_;
};

}  // namespace conductor::serve
