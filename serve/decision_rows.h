// What /v1/route and the gateway share to log their decisions: request ids, the per-request
// exploration generator, and the JSONL `decision` / `feedback` rows (docs/production.md has the
// schema with a real example).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/json_util.h"
#include "core/random.h"
#include "envs/live_world.h"
#include "serve/decision_log.h"
#include "serve/router.h"

namespace conductor::serve {

// One step of a logged episode: the action taken with its propensity, and for a call its result.
struct LoggedStep {
  int action = -1;             // index into the world's actions
  double propensity = 1.0;     // probability of `action` under the serving decision rule
  bool fallback = false;       // a call the gateway made after the policy's steps ran out (no propensity)
  bool has_result = false;     // calls made by the gateway (not /v1/route)
  CallResult result;           // has_result: error, tokens, answer id, cost, latency
  std::string failure;         // "" or the failure kind ("timeout", "http_503", "circuit_open", ...)
};

struct LoggedDecision {
  std::string request_id;
  std::string endpoint;        // "route" | "chat" | "messages"
  std::string key_id;          // the client's API key id ("" = keys off); never the key
  std::string query_id;        // the client's, else "sha256:<16 hex of the text>"
  LiveQuery query;             // as the episode saw it (input_tokens resolved)
  std::vector<LoggedStep> steps;
  int status = 200;            // HTTP status answered
  int answered_by = -1;        // worker whose answer was returned (chat), -1 = none
  int64_t timestamp_ms = 0;
};

class DecisionRecorder {
 public:
  // `log` and `index` may be null (logging off: nothing is written, feedback is refused).
  DecisionRecorder(std::shared_ptr<const Router> router, ExplorationConfig exploration,
                   std::shared_ptr<DecisionLog> log, std::shared_ptr<RequestIndex> index);

  // A fresh request id ("req_" + 16 hex digits, unique within the process) and its sequence number.
  std::string new_request_id(uint64_t* sequence = nullptr);
  // The request's exploration generator.
  Rng request_rng(uint64_t sequence) const;
  const ExplorationConfig& exploration() const { return exploration_; }
  bool logging() const { return log_ != nullptr; }
  const DecisionLog* log() const { return log_.get(); }
  const RequestIndex* index() const { return index_.get(); }

  // The query id a row carries.
  std::string query_id(const std::string& given, const std::string& text) const;
  // The JSONL decision row of `d`.
  json row(const LoggedDecision& d) const;
  // Queues the row; on success the request id becomes known to feedback. False when logging is
  // off or the row was dropped.
  bool record(const LoggedDecision& d);
  // Queues a feedback row for a known request id; false when dropped.
  bool record_feedback(const std::string& request_id, double quality, const std::string& source);

 private:
  std::shared_ptr<const Router> router_;
  ExplorationConfig exploration_;
  std::shared_ptr<DecisionLog> log_;
  std::shared_ptr<RequestIndex> index_;
  uint64_t id_key_ = 0;
  std::atomic<uint64_t> next_{1};
};

int64_t unix_time_ms();

}  // namespace conductor::serve
