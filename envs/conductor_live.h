// The serving side of the "conductor" environment (envs/conductor_env.h): builds, for a live query
// and the live results of worker calls, exactly the observation ConductorEnv builds for the same
// state (same ObsLayout, same normalizations), so an exported policy sees what it was trained on.
//
// Everything needed is a small JSON "world spec" written into the export manifest:
//   {"featurizer": QueryFeaturizer::to_json(), "workers": [{"name", "provider", "price_in_per_mtok",
//    "price_out_per_mtok", "expected_cost_usd", "trust"}], "cost_scale", "latency_scale",
//    "max_steps", "finish_rules": ["last", ...], "default_finish", "budget_cap_usd": number|null,
//    "cost_conditioning": null | {"w_cost_min", "w_cost_max", "w_cost_default"}}
// world_spec_from_env() computes it from a built ConductorWorld and its config; a test steps
// ConductorEnv and checks every observation against this class, float for float.
//
// Budget: a request's budget_usd masks CALL(k) when cum_cost + expected_cost[k] > budget (the env's
// cap rule); without one, the training config's cap applies when budget.mode was `cap`.
// Faults are a training-time device: live observations use price factor 1.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/json_util.h"
#include "rewards/featurizer.h"
#include "rewards/reward.h"
#include "serve/live_world.h"

namespace conductor {
struct ConductorWorld;
struct ConductorEnvConfig;
}  // namespace conductor

namespace conductor::serve {

json world_spec_from_env(const ConductorWorld& world, const ConductorEnvConfig& config);

class ConductorLiveWorld : public LiveWorld {
 public:
  // Throws conductor::Error naming `source` and the field when the spec is incomplete or invalid.
  static std::shared_ptr<ConductorLiveWorld> from_spec(const json& spec, const std::string& source);

  int obs_dim() const override { return dim_; }
  int n_actions() const override { return static_cast<int>(actions_.size()); }
  int max_steps() const override { return max_steps_; }
  const std::vector<std::string>& workers() const override { return names_; }
  const std::vector<ActionInfo>& actions() const override { return actions_; }
  double price_in_per_mtok(int w) const override { return price_in_[w]; }
  double price_out_per_mtok(int w) const override { return price_out_[w]; }
  double expected_call_cost_usd(int w) const override { return expected_cost_[w]; }
  std::unique_ptr<LiveEpisode> start(const LiveQuery& query) const override;
  std::string default_finish_rule() const override { return default_finish_; }
  // ConductorEnv's rules: last, vote (ties to the most recent), most_trusted (highest trust).
  int final_call(const std::string& rule, const std::vector<CallResult>& calls) const override;

  const QueryFeaturizer& featurizer() const { return featurizer_; }
  bool cost_weight_range(double* lo, double* hi, double* default_weight) const override {
    if (!reward_.cost_conditioned()) return false;
    *lo = reward_.w_cost_min;
    *hi = reward_.w_cost_max;
    *default_weight = reward_.w_cost;
    return true;
  }

 private:
  friend class ConductorLiveEpisode;
  QueryFeaturizer featurizer_;
  std::vector<std::string> names_;
  std::vector<double> price_in_, price_out_, expected_cost_, trust_;
  double cost_scale_ = 1.0, latency_scale_ = 1.0;
  int max_steps_ = 1;
  std::vector<ActionInfo> actions_;
  double budget_cap_usd_ = -1.0;  // < 0: none
  RewardConfig reward_;           // only the cost-conditioning range and default are set
  std::string default_finish_ = "last";
  // ObsLayout (envs/conductor_env.h).
  int M_ = 0, features_ = 0, pool_ = 0, prices_ = 0, called_ = 0, history_ = 0, slot_ = 0, summary_ = 0,
      preference_ = 0, mask_ = 0, dim_ = 0;
};

}  // namespace conductor::serve
