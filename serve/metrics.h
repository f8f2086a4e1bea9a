// Prometheus text-format metrics of the server (exposition format 0.0.4), lock-free on the hot path:
// every counter is a fixed atomic slot chosen at construction (paths, status codes, workers).
//
//   conductor_http_requests_total{path="/v1/route",code="200"}         counter
//   conductor_http_request_duration_seconds_bucket{path=...,le=...}    histogram (+ _sum, _count)
//   conductor_route_decisions_total{action="call:gpt-4"}               counter
//   conductor_worker_calls_total{worker="gpt-4"}                        counter
//   conductor_worker_errors_total{worker="gpt-4",kind="timeout"}       counter (kinds: serve/providers.h)
//   conductor_worker_retries_total{worker="gpt-4"}                      counter
//   conductor_feedback_total{result="recorded"}                         counter
//   conductor_in_flight_requests                                        gauge (from a callback)
//   ... and whatever the extra sources render (the gateway's per-provider gauges and circuit
//   breakers, the decision log's counters).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "serve/providers.h"

namespace conductor::serve {

// Outcomes of POST /v1/feedback.
enum class FeedbackResult { kRecorded = 0, kInvalid, kUnknownRequest, kDropped, kLoggingOff };
constexpr int kFeedbackResults = 5;
const char* feedback_result_name(FeedbackResult r);

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
  void count_worker_error(int worker, UpstreamError kind);
  void count_worker_retry(int worker);
  void count_feedback(FeedbackResult r);
  void set_in_flight_source(std::function<int()> fn) { in_flight_ = std::move(fn); }
  // Appended to the exposition text (complete "# HELP/# TYPE" blocks). Call before serving.
  void add_extra_source(std::function<std::string()> fn) { extra_.push_back(std::move(fn)); }

  // For tests.
  uint64_t worker_errors(int worker, UpstreamError kind) const;
  uint64_t feedback(FeedbackResult r) const;

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
  std::unique_ptr<std::atomic<uint64_t>[]> worker_errors_;  // [workers x kUpstreamErrorKinds]
  std::unique_ptr<std::atomic<uint64_t>[]> worker_retries_;
  std::unique_ptr<std::atomic<uint64_t>[]> feedback_;       // [kFeedbackResults]
  std::function<int()> in_flight_;
  std::vector<std::function<std::string()>> extra_;
};

}  // namespace conductor::serve
