// What the server needs from the environment side to make decisions for live requests: the
// observation the conductor environment would show at each step of an episode built from a real
// query and the real results of worker calls. The serving path must produce exactly what the
// environment produces for the same state, or the exported policy sees inputs it was not trained on;
// the conductor's implementation (envs/conductor_live.h) writes them with the environment's own
// ConductorObsWriter.
//
// Contract:
//  - start() validates nothing about the request beyond what it needs (the server has already
//    checked worker names and types) and returns a fresh episode; it is called concurrently from
//    several threads and must not share mutable state between episodes.
//  - LiveEpisode::observation() is the current step as a batch of one row (dense floats, mask and
//    the state view), valid until the next record_call().
//  - record_call() appends the result of CALL(worker) so the next observation() reflects it.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/json_util.h"
#include "world/observation.h"

namespace conductor {

struct ActionInfo {
  enum class Kind { kCall, kFinish };
  Kind kind = Kind::kCall;
  int worker = -1;          // kCall: index into LiveWorld::workers()
  std::string finish_rule;  // kFinish: "last" | "vote" | "trusted" ...
  std::string name;         // "call:gpt-4o", "finish:vote"
};

struct LiveQuery {
  std::string text;
  std::string task;             // "" when unknown
  int input_tokens = -1;        // -1: estimated from the text
  std::vector<uint8_t> available;  // [n_workers] 1 = may be called; all ones when the request names none
  double budget_usd = std::nan("");  // NaN = no per-request budget
  double cost_weight = std::nan("");  // NaN = the policy's default (cost-conditioned policies only)
  std::vector<double> price_factor;  // [n_workers] current price / list price; empty = list prices
  // The query's sentence embedding when the world's features read one (features.encoder); empty =
  // the world computes it from `text` with its encoder (ConductorLiveWorld::set_embedder).
  std::vector<float> embedding;
};

// The observable result of one worker call (never the hidden quality).
struct CallResult {
  int worker = -1;
  uint8_t error = 0;        // ErrorCode (traces/trace_set.h): 0 ok, 1 timeout, 2 rate limited, 3 server error
  int output_tokens = 0;
  int32_t answer_id = -1;   // comparable answer class where known (agreement), else -1
  std::string answer_text;  // what the worker said (the gateway returns it)
  double cost_usd = 0.0;
  double latency_s = 0.0;
};

class LiveEpisode {
 public:
  virtual ~LiveEpisode() = default;
  virtual ObsBatch observation() const = 0;
  virtual void record_call(const CallResult& result) = 0;
  // Steps taken so far (calls recorded).
  virtual int steps() const = 0;
};

class LiveWorld {
 public:
  virtual ~LiveWorld() = default;
  virtual int obs_dim() const = 0;
  virtual int n_actions() const = 0;
  virtual int max_steps() const = 0;  // 1 = plain per-query routing
  virtual const std::vector<std::string>& workers() const = 0;
  virtual const std::vector<ActionInfo>& actions() const = 0;
  // USD per 1M tokens, per worker (gateway cost accounting).
  virtual double price_in_per_mtok(int worker) const = 0;
  virtual double price_out_per_mtok(int worker) const = 0;
  // Mean cost of one call in training (the fallback when a list price is unknown), NaN if unknown.
  virtual double expected_call_cost_usd(int worker) const {
    (void)worker;
    return std::nan("");
  }
  virtual std::unique_ptr<LiveEpisode> start(const LiveQuery& query) const = 0;
  // Cost-conditioned policies: the range of cost weights (per USD) a request may ask for, and the
  // default. False when the policy was trained with a single cost weight.
  virtual bool cost_weight_range(double* lo, double* hi, double* default_weight) const {
    (void)lo, (void)hi, (void)default_weight;
    return false;
  }

  // The tasks a request's "task" may name (the featurizer's task vocabulary: any other task would be
  // read as no task at all); empty when the world has no task vocabulary.
  virtual std::vector<std::string> tasks() const { return {}; }

  // The finish rule applied when the workflow ends at max_steps (or the policy never finishes).
  virtual std::string default_finish_rule() const { return "last"; }
  // Which call's answer FINISH(rule) returns: an index into `calls`, -1 when none succeeded.
  // Default: the last successful call.
  virtual int final_call(const std::string& rule, const std::vector<CallResult>& calls) const {
    for (int j = static_cast<int>(calls.size()) - 1; j >= 0; --j)
      if (calls[j].error == 0) return j;
    return -1;
  }
};

}  // namespace conductor
