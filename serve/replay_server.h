// `conductor replay-server`: OpenAI-compatible mock providers that answer from a trace file, so the
// gateway can be tested end to end on loopback.
//
//   POST /v1/chat/completions {"model": "<worker>", "messages": [...]}
//     The query is found by the last user message: equal to a query's text, else to a query's id.
//     Ok outcome:  200 chat.completion with content = the logged answer ("answer <id>" from the
//                  answer class; "<query id> answered by <worker>" when the answer is not logged),
//                  usage from the logged tokens, and the extension field `conductor_answer_id`.
//     Logged error: timeout -> 504, rate limited -> 429, server error -> 500.
//     Not logged (missing outcome): 404. Unknown model: 404 (model_not_found). Unknown query: 404.
//     Every answer is delayed by logged latency / speedup (+ the worker's added latency); errors too.
//   GET /v1/models  the workers of the trace.
//   GET /healthz
// `fail` workers answer 503 at once; `add_latency` adds seconds per worker, as given (it is not
// divided by the speedup).
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>

#include "serve/http_server.h"
#include "traces/trace_set.h"

namespace conductor::serve {

struct ReplayOptions {
  double speedup = 1.0;                        // > 0; logged latency is divided by it
  std::set<std::string> fail;                  // workers that always answer 503
  std::map<std::string, double> add_latency;   // worker -> extra seconds (>= 0)
};

class ReplayProviders {
 public:
  // Throws conductor::Error for unknown workers in `fail`/`add_latency` or a bad speedup.
  ReplayProviders(TraceSet traces, ReplayOptions options);

  // Attach to a server (the handler uses its timers for latency).
  void attach(HttpServer* server) { server_ = server; }
  void handle(HttpRequest& req, Responder respond);

  // Index of the query that `content` names (text or id), -1 when none.
  int find_query(const std::string& content) const;
  const TraceSet& traces() const { return traces_; }

 private:
  TraceSet traces_;
  ReplayOptions options_;
  std::unordered_map<std::string, int> by_text_, by_id_;
  std::vector<uint8_t> fail_;        // per model
  std::vector<double> add_latency_;  // per model
  HttpServer* server_ = nullptr;
};

}  // namespace conductor::serve
