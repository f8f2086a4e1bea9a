// Bandit-feedback logs simulated from full-information traces (`conductor traces simulate-logs`).
//
// Each logged request draws a query uniformly (with replacement) from the split's complete rows
// (quality and cost logged for every model), then one model from the logging policy, and records
// the propensity of that choice and the chosen call's logged outcome. Because every model's outcome
// is known, the true value of any target policy on the same query distribution is known exactly:
// the mean over the split's complete rows of sum_a pi(a|x) outcome(x, a) (true_policy_value).
//
// Logging policies:
//   uniform               every model with probability 1/M
//   epsilon-greedy:<eps>  the greedy model (highest mean quality on the TRAINING split) with
//                         probability 1 - eps + eps/M, each other model with eps/M; eps in (0, 1]
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "traces/trace_set.h"

namespace conductor::eval {

struct LoggingPolicy {
  double epsilon = 1.0;  // 1 = uniform
  int greedy = -1;       // greedy model (epsilon < 1)
  std::string id() const;  // "uniform" | "epsilon-greedy:<eps>"
  // Probability of model a among M.
  double prob(int a, int n_models) const;
};

// Parses "uniform" | "epsilon-greedy:<eps>"; the greedy model is chosen on the training split of
// `traces`. Throws naming the accepted forms.
LoggingPolicy parse_logging_policy(const std::string& spec, const TraceSet& traces);

// Query indices of `split` whose quality and cost are logged for every model.
std::vector<std::size_t> complete_queries(const TraceSet& traces, Split split);

// Returns a trace set with the models and queries of `traces`, no /outcomes, and `n` simulated
// /decisions (timestamps one second apart). Deterministic in `seed`.
TraceSet simulate_logs(const TraceSet& traces, Split split, const LoggingPolicy& logging, std::size_t n,
                       uint64_t seed);

}  // namespace conductor::eval
