// Reward models: the outcome of every (query, worker) call of a trace set, as a dense table that the
// environment reads with no computation per step.
//
//  - replay: the logged values exactly. A (query, worker) pair whose quality or cost is not logged is
//    unavailable (the environment masks it). Traces without latency (RouterBench logs none) take the
//    latency of the worker's latency model for the logged output tokens (see predictors.h).
//  - model:  every pair is predicted from the predictors fitted on the training split. Binary-quality
//    workers draw correctness from Bernoulli(p); others use p. A correct answer takes the query's
//    logged correct answer id; a wrong one takes one of the query's logged wrong answer ids (or -1
//    when none is logged). Draws use Rng(derive_seed(seed, query, worker)): deterministic per seed.
//  - hybrid: replay where the pair is logged, model elsewhere.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "world/predictors.h"
#include "traces/trace_set.h"

namespace conductor {

enum class RewardModelKind { kReplay, kModel, kHybrid };
RewardModelKind parse_reward_model_kind(const std::string& s);  // replay | model | hybrid
const char* reward_model_name(RewardModelKind k);

struct OutcomeTable {
  std::size_t n_queries = 0;
  std::size_t n_models = 0;
  // Row-major [n_queries x n_models].
  std::vector<float> quality;
  std::vector<double> cost_usd;
  std::vector<float> latency_s;
  std::vector<int32_t> output_tokens;
  std::vector<int32_t> answer;       // -1 = not comparable
  std::vector<uint8_t> error;        // ErrorCode of the call as logged (model rows: kOk)
  std::vector<uint8_t> available;    // 1 = an outcome exists for the pair
  std::vector<uint8_t> predicted;    // 1 = the outcome comes from the model, 0 = replayed
  std::size_t at(std::size_t q, std::size_t m) const { return q * n_models + m; }
};

// Builds the table. `predictors` may be null for kReplay when the traces log latency for every
// logged call; otherwise it is required.
OutcomeTable build_outcomes(const TraceSet& traces, const std::vector<float>& features, int dim,
                            RewardModelKind kind, const WorldPredictors* predictors, uint64_t seed);

}  // namespace conductor
