// The serving side of the "conductor" environment: a live query and the live results of worker
// calls, kept as a ConductorStateView and written into observations by the environment's own
// ConductorObsWriter (world/conductor_state.h), from the export's world spec. A policy therefore sees
// at serving time exactly the observation ConductorEnv would show for the same state.
//
// Budget: a request's budget_usd masks CALL(k) when cum_cost + expected_cost[k] > budget (the env's
// cap rule); without one, the training config's cap applies when budget.mode was `cap`.
// Faults are a training-time device: live observations use price factor 1.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/json_util.h"
#include "world/conductor_state.h"
#include "envs/live_world.h"

namespace conductor {

class ConductorLiveWorld : public LiveWorld {
 public:
  explicit ConductorLiveWorld(ConductorWorldSpec spec);
  // Throws conductor::Error naming `source` and the field when the spec is incomplete or invalid.
  static std::shared_ptr<ConductorLiveWorld> from_spec(const json& spec, const std::string& source);

  int obs_dim() const override { return writer_.dim(); }
  int n_actions() const override { return static_cast<int>(actions_.size()); }
  int max_steps() const override { return spec_.max_steps; }
  const std::vector<std::string>& workers() const override { return names_; }
  const std::vector<ActionInfo>& actions() const override { return actions_; }
  double price_in_per_mtok(int w) const override { return spec_.workers[w].price_in_per_mtok; }
  double price_out_per_mtok(int w) const override { return spec_.workers[w].price_out_per_mtok; }
  double expected_call_cost_usd(int w) const override { return spec_.workers[w].expected_cost_usd; }
  std::unique_ptr<LiveEpisode> start(const LiveQuery& query) const override;
  std::string default_finish_rule() const override { return finish_rule_name(spec_.default_finish); }
  // ConductorEnv's rules: last, vote (ties to the most recent), most_trusted (highest trust).
  int final_call(const std::string& rule, const std::vector<CallResult>& calls) const override;
  bool cost_weight_range(double* lo, double* hi, double* default_weight) const override;
  std::vector<std::string> tasks() const override { return spec_.featurizer.tasks(); }

  const ConductorWorldSpec& spec() const { return spec_; }
  const QueryFeaturizer& featurizer() const { return spec_.featurizer; }
  const ConductorObsWriter& writer() const { return writer_; }

  // The sentence encoder of a world whose features read the query's embedding
  // (featurizer().needs_embedding()): text -> featurizer().encoder().dim floats, called once per
  // request that carries no embedding, from any thread (policies/query_encoder.h installs it).
  using Embedder = std::function<std::vector<float>(const std::string&)>;
  void set_embedder(Embedder e) { embedder_ = std::move(e); }
  const Embedder& embedder() const { return embedder_; }

 private:
  ConductorWorldSpec spec_;
  ConductorObsWriter writer_;
  std::vector<std::string> names_;
  std::vector<double> trust_;
  std::vector<ActionInfo> actions_;
  Embedder embedder_;
};

}  // namespace conductor
