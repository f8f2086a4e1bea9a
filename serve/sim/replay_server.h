// `conductor replay-server`: mock providers that answer from a trace file, in the wire format of
// OpenAI, Anthropic or Gemini (`--api`), so the gateway can be tested end to end on loopback (over
// TLS too, with the HTTP server's tls_cert_file / tls_key_file).
//
//   openai     POST /v1/chat/completions                {"model": "<worker>", "messages": [...]}
//   anthropic  POST /v1/messages                        {"model", "max_tokens", "messages", "system"?}
//              (needs the anthropic-version header and max_tokens, as the real API does)
//   gemini     POST /v1beta/models/<worker>:generateContent  {"contents": [{role, parts}], ...}
//   GET /v1/models (the workers), GET /healthz (counters: requests, injected failures, peak
//   concurrency, streams started / completed / cancelled)
//
// The query is found by the last user message: equal to a query's text, else to a query's id.
//   Ok outcome:  200 in the API's answer format with the logged answer ("answer <id>" from the
//                answer class; "<query id> answered by <worker>" when none is logged), usage from the
//                logged tokens, and two extension fields the gateway reads: `conductor_answer_id`
//                (the answer class, -1 = not comparable) and `conductor_latency_s` (the logged
//                latency this answer simulates; also on error bodies).
//   Logged error: timeout -> 504, rate limited -> 429, server error -> 500 (in the API's error format).
//   Not logged (missing outcome): 404. Unknown model: 404. Unknown query: 404.
// Every answer is delayed by logged latency / speedup plus the worker's added latency (errors too),
// or by exactly `delay_s` when that is set. `fail` workers answer 503 at once. With `fail_rate` p,
// each request fails with 500 "injected failure" with probability p (seeded, counted). With
// `require_key`, requests without that key in the API's auth header get 401.
//
// Streaming: a request with "stream": true (openai, anthropic) or to
// /v1beta/models/<worker>:streamGenerateContent (gemini, `?alt=sse`) gets its answer as the API's
// server-sent events (serve/sse.h): the opening events at once, then the answer text one
// character per event, evenly spread over the answer's delay (the last at the full delay), the
// closing events (usage, the extension fields) with the last one. Errors stay plain error
// statuses. A client that disconnects before its answer is complete (the last event, or a delayed
// plain answer) is counted (/healthz `cancelled`): how tests see the gateway cancel its upstream call.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

#include "core/random.h"
#include "serve/http_server.h"
#include "serve/providers.h"
#include "traces/trace_set.h"

namespace conductor::serve {

struct ReplayOptions {
  double speedup = 1.0;                        // > 0; logged latency is divided by it
  std::set<std::string> fail;                  // workers that always answer 503
  std::map<std::string, double> add_latency;   // worker ("*" = every worker) -> extra seconds (>= 0)
  ApiKind api = ApiKind::kOpenAI;
  double delay_s = -1.0;                       // >= 0: every answer takes exactly this long
  double fail_rate = 0.0;                      // injected 500s, in [0, 1]
  uint64_t fail_seed = 1;
  std::string require_key;                     // "" = no auth check
  bool report_latency = true;                  // conductor_latency_s in answers
};

struct ReplayStats {
  uint64_t requests = 0;
  uint64_t injected_failures = 0;
  int in_flight = 0;
  int peak_in_flight = 0;
  uint64_t streams = 0;            // streamed answers started
  uint64_t streams_completed = 0;  // ... whose last event was sent
  uint64_t cancelled = 0;          // requests (streamed or not) whose client left before the answer was complete
};

class ReplayProviders {
 public:
  // Throws conductor::Error for unknown workers in `fail`/`add_latency`, a bad speedup or rate.
  ReplayProviders(TraceSet traces, ReplayOptions options);

  // Attach to a server (the handler uses its timers for latency).
  void attach(HttpServer* server) { server_ = server; }
  void handle(HttpRequest& req, Responder respond);

  // Index of the query that `content` names (text or id), -1 when none.
  int find_query(const std::string& content) const;
  const TraceSet& traces() const { return traces_; }
  ReplayStats stats() const;
  void reset_peak();

 private:
  HttpResponse api_error(int status, const std::string& message, double latency_s) const;
  void respond_later(double delay_s, HttpResponse r, Responder respond, RequestCancel* cancel = nullptr);
  // The answer as server-sent events spread over delay_s.
  void stream_answer(double delay_s, const std::string& id, const std::string& model, const std::string& text,
                     int in_tok, int out_tok, const json& extra, bool include_usage, HttpRequest& req,
                     Responder respond);

  TraceSet traces_;
  ReplayOptions options_;
  std::unordered_map<std::string, int> by_text_, by_id_;
  std::vector<uint8_t> fail_;        // per model
  std::vector<double> add_latency_;  // per model
  HttpServer* server_ = nullptr;
  mutable std::mutex rng_mu_;
  Rng rng_;
  std::atomic<uint64_t> requests_{0}, injected_{0};
  std::atomic<int> in_flight_{0}, peak_{0};
  std::atomic<uint64_t> streams_{0}, streams_completed_{0}, cancelled_{0};
};

}  // namespace conductor::serve
