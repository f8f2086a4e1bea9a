// Off-policy evaluation of single-step bandit logs (one logged worker per request).
//
// For logged rows i = 1..n with context x_i, logged action a_i, logging propensity p_i and reward
// r_i, a target policy pi(a | x) and a reward model q(x, a), with importance weight
// w_i = pi(a_i | x_i) / p_i (definitions as in Open Bandit Pipeline, Saito et al. 2021):
//   DM        (1/n) sum_i sum_a pi(a|x_i) q(x_i, a)                                   [Dudik et al. 2011]
//   IPS       (1/n) sum_i min(w_i, clip) r_i                                           [Horvitz-Thompson; clipping: Bottou et al. 2013]
//   SNIPS     sum_i w_i r_i / sum_i w_i                                                [Swaminathan & Joachims 2015]
//   DR        (1/n) sum_i [ dm_i + w_i (r_i - q(x_i, a_i)) ],  dm_i = sum_a pi(a|x_i) q(x_i, a)   [Dudik et al. 2011]
//   SNDR      (1/n) sum_i dm_i + sum_i w_i (r_i - q(x_i, a_i)) / sum_i w_i             [OBP SelfNormalizedDoublyRobust]
//   switch-DR (1/n) sum_i [ dm_i + 1{w_i <= tau} w_i (r_i - q(x_i, a_i)) ]            [Wang et al. 2017]
// Effective sample size: (sum w)^2 / sum w^2 (Kong 1992).
//
// Confidence intervals: `bootstrap` resamples rows with replacement (seeded, percentile interval);
// `normal` uses the asymptotic normal interval of each estimator's influence function (the sample
// mean for the linear estimators; the delta method for the self-normalized ones).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace conductor::eval {

struct BanditData {
  int n_actions = 0;
  std::vector<int32_t> action;       // [n] in [0, n_actions)
  std::vector<double> propensity;    // [n] in (0, 1]
  std::vector<double> reward;        // [n] finite
  std::vector<double> target_prob;   // [n x n_actions] target policy probabilities (rows sum to 1)
  std::vector<double> reward_hat;    // [n x n_actions] reward model
  std::size_t size() const { return action.size(); }
};

// Throws conductor::Error naming the first bad row: a missing (NaN) or zero/negative propensity, a
// propensity above 1, an action outside [0, n_actions), a missing reward, target probabilities
// that are negative or do not sum to 1. `what` prefixes messages (e.g. the log file).
void validate_bandit_data(const BanditData& data, const std::string& what);

enum class CiMethod { kBootstrap, kNormal };

struct OpeOptions {
  double ips_clip = 100.0;         // IPS weight cap (clip >= max weight = no clipping)
  double switch_tau = 100.0;       // switch-DR: rows with w > tau use the DM term only
  CiMethod ci = CiMethod::kBootstrap;
  int bootstrap_samples = 1000;    // >= 10 for bootstrap intervals
  double confidence = 0.95;
  uint64_t seed = 0;               // bootstrap resampling
};

struct OpeEstimate {
  std::string estimator;  // "dm" | "ips" | "snips" | "dr" | "sndr" | "switch-dr"
  double value = 0.0;
  double ci_low = 0.0;
  double ci_high = 0.0;
};

struct OpeResult {
  std::size_t n = 0;
  double effective_sample_size = 0.0;
  double max_weight = 0.0;
  double mean_weight = 0.0;  // ~1 when the logging policy covers the target's actions
  std::vector<OpeEstimate> estimates;
  const OpeEstimate& get(const std::string& name) const;
};

// Validates, then computes every estimator with its interval.
OpeResult estimate_policy_value(const BanditData& data, const OpeOptions& options, const std::string& what = "logs");

const std::vector<std::string>& ope_estimator_names();

}  // namespace conductor::eval
