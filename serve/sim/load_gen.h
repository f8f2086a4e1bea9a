// HTTP load generators on one event-loop thread (latency percentiles by linear interpolation,
// core/stats.h):
//  - run_load: closed loop for `conductor bench serve`: `connections` keep-alive connections, each
//    sending the same request again as soon as the previous answer arrived; throughput and latency
//    after a warm-up.
//  - run_burst: `n` requests sent at once on `n` connections (`conductor bench gateway`): wall time
//    until the last answer, latency percentiles, status counts.
//  - run_traffic: open loop at a fixed rate (the soak and the production-loop load generator): a
//    request every 1/rate seconds whatever the server does, with a callback per answer (which may
//    send follow-up requests, e.g. feedback) and a report per interval.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "serve/http_client.h"

namespace conductor::serve {

struct LoadResult {
  int connections = 0;
  double seconds = 0.0;     // measured window (after warm-up)
  uint64_t requests = 0;    // completed in the window
  uint64_t non_200 = 0;     // of which not 200
  double requests_per_s = 0.0;
  double p50_ms = 0.0, p90_ms = 0.0, p99_ms = 0.0, max_ms = 0.0;
};

// POSTs `body` (a GET when it is empty). Throws conductor::Error when it cannot connect.
LoadResult run_load(const std::string& host, int port, const std::string& path, const std::string& body,
                    int connections, double duration_s, double warmup_s);

struct BurstResult {
  int requests = 0;
  double wall_s = 0.0;                  // first send to last answer
  double p50_ms = 0.0, p99_ms = 0.0, max_ms = 0.0;
  std::map<int, int> statuses;          // HTTP status -> count (0 = no answer: connection error, timeout)
  std::vector<std::string> errors;      // the first few transport errors
};

// Sends bodies[i] to url.path + path, all at once (one connection each), and waits for every answer.
BurstResult run_burst(const Url& url, const std::string& path, const std::vector<std::string>& bodies,
                      double timeout_s);

struct TtftResult {
  int requests = 0, ok = 0;             // ok: status 200 with a first content piece
  double p50_ms = 0.0, p99_ms = 0.0, max_ms = 0.0;  // time to the first non-empty content piece
  double total_p50_ms = 0.0;            // time to the end of the stream
  std::vector<std::string> errors;      // the first few failures
};

// Sends bodies[i] (streaming chat requests, OpenAI chunks) one after another on one kept-alive
// connection and times each from the send to the first chunk whose delta holds text.
TtftResult run_ttft(const Url& url, const std::string& path, const std::vector<std::string>& bodies, double timeout_s);

struct TrafficInterval {
  double t_end_s = 0.0;                 // seconds since the start
  uint64_t sent = 0, answered = 0;      // in this interval
  std::map<int, uint64_t> statuses;     // of the answers in this interval (0 = transport error)
  double p50_ms = 0.0, p99_ms = 0.0, max_ms = 0.0;
  int outstanding = 0;                  // requests without an answer at the end of the interval
};

struct TrafficOptions {
  double rate_per_s = 10.0;             // requests started per second (open loop)
  double duration_s = 10.0;             // sending stops after this; answers are awaited (timeout_s)
  uint64_t max_requests = 0;            // 0 = no limit (stop at duration_s)
  double timeout_s = 60.0;              // per request
  double report_every_s = 10.0;         // interval of TrafficInterval reports
};

class TrafficRunner {
 public:
  // The i-th request: {path, JSON body}.
  using MakeRequest = std::function<std::pair<std::string, std::string>(uint64_t i)>;
  // Every answer (or transport error) of a request made by MakeRequest; `runner.send_extra()` may
  // send follow-ups from here.
  using OnAnswer = std::function<void(uint64_t i, const ClientResult& r, double latency_s)>;
  using OnInterval = std::function<void(const TrafficInterval&)>;

  TrafficRunner(const Url& url, TrafficOptions options);
  ~TrafficRunner();
  // Runs to completion on the calling thread.
  void run(MakeRequest make, OnAnswer on_answer, OnInterval on_interval);
  // A follow-up request (its answer is counted in extra_statuses(), not in the intervals).
  void send_extra(const std::string& path, const std::string& body);
  const std::map<int, uint64_t>& extra_statuses() const { return extra_statuses_; }

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  std::map<int, uint64_t> extra_statuses_;
};

}  // namespace conductor::serve
