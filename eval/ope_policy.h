// `conductor ope`: off-policy evaluation of a conductor checkpoint on bandit logs (/decisions).
//
// The target policy is the conductor's FIRST call: pi(a | x) is the probability that its first
// action on query x is CALL(worker a) (greedy: 1 for the argmax; --stochastic: the policy's
// probabilities). Single-step logs record one worker per request, so for a multi-step conductor
// this evaluates its routing decision, not the rest of its workflow (said in the report).
//
// The policy's observation is rebuilt by the environment of the checkpoint's configuration over
// `traces_path` (a trace file holding the logged queries, matched by query id and checked to have
// the logged task and text: e.g. the file the logs were simulated from; logs of another world,
// whose ids repeat, are refused). When that file has full-information outcomes for the logged queries,
// the report also gives the true value of the policy on the logged query distribution.
//
// Reward model for DM / DR / SNDR / switch-DR, fitted on the logs only: per worker, logistic
// regression of logged quality on the query features, and the mean logged cost and latency.
#pragma once

#include <cstdint>
#include <string>

#include "core/json_util.h"
#include "eval/ope.h"

namespace conductor::eval {

struct OpePolicyOptions {
  std::string checkpoint;
  std::string logs_path;
  std::string traces_path;   // queries (and, if present, outcomes for the true value)
  bool stochastic = false;
  OpeOptions ope;
  int num_envs = 16;
};

// Runs the estimators for quality, cost_usd and the checkpoint's reward; returns report.json.
json run_ope(const OpePolicyOptions& options);
std::string ope_markdown(const json& report);
// Writes report.json and report.md into `dir`; returns report.md.
std::string write_ope_report(const json& report, const std::string& dir);

}  // namespace conductor::eval
