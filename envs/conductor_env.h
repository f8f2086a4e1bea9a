// ConductorEnv: the routing environment of DESIGN.md section 5 (documented in docs/environment.md).
//
// An episode is one query. Actions 0..M-1 are CALL(worker k) over the configured workers; actions
// M..M+R-1 are FINISH(rule) over the configured finish rules (last, vote, most_trusted). Rewards are 0
// on CALL steps and the composite reward (world/reward.h) at the step that ends the workflow.
// `max_steps` bounds the number of actions of an episode: when the max_steps-th action is a CALL,
// the default finish rule applies at once, the reward is delivered and the step sets both
// terminated (the outcome is final: nothing to bootstrap) and truncated (the step limit decided,
// as DESIGN.md asks to mark). An explicit FINISH sets terminated only.
//
// Batched with auto-reset; sub-environment i is seeded with derive_seed(seed, i). Query sampling:
// `sample` draws queries of the split at random (per sub-environment RNG, task mix faults apply);
// `sequential` deals the split's queries in order across the batch (sub-environments take the next
// query when they reset, in index order), wrapping around after the last one; each finished
// episode's `query_index` and `pass` extras say which query it was, and sequential_pass_complete()
// says when every query of the split has finished once (pass 0).
//
// The vector observation (layout in ObsLayout) holds only what a gateway sees: query features, pool
// mask, prices, called workers, per-step history (worker, error, output length, agreement, latency),
// cumulative cost and latency, and the action mask. Never the hidden quality. It is written by the
// ConductorObsWriter of world/conductor_state.h, the one serving uses too; policies that render their
// own encoding (the transformer conductor) read the state views (observations().states).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/random.h"
#include "world/conductor_state.h"
#include "envs/env.h"
#include "envs/env_hooks.h"
#include "world/faults.h"
#include "world/featurizer.h"
#include "world/outcome_model.h"
#include "world/finish_rules.h"
#include "world/predictors.h"
#include "world/reward.h"
#include "traces/synth.h"
#include "traces/trace_set.h"

namespace conductor {

struct CascadeExpert;  // conductor_env.cpp: the cascade baseline's rule, fitted on the training split

struct ConductorEnvConfig {
  // Source of the world: a trace file, or the synthetic generator (traces/synth.h).
  std::string traces_path;              // `traces: PATH`
  bool synthetic = false;               // `synthetic: {queries, seed, ...}`
  SynthConfig synth;
  Split split = Split::kTrain;          // `split`: train | validation | test
  bool sequential = false;              // `mode`: sample (default) | sequential
  std::vector<std::string> workers;     // `workers`: [names] or all (empty = all)
  std::string workers_where;
  int max_steps = 3;                    // >= 1
  std::vector<FinishRule> finish_rules = {FinishRule::kLast, FinishRule::kVote, FinishRule::kMostTrusted};
  FinishRule default_finish = FinishRule::kLast;  // `default_finish`, applied at max_steps; one of finish_rules
  FeaturizerConfig features;            // `features: {hash_dim, ngram_max}`
  RewardConfig reward;                  // `reward: {w_quality, w_cost, w_latency, no_answer_penalty, budget}`
  bool randomize_pool = false;          // `pool: {randomize, min_size}`
  int pool_min_size = 1;
  std::vector<FaultSpec> faults;        // `faults: [...]` (world/faults.h)
  RewardModelKind reward_model = RewardModelKind::kReplay;  // `reward_model`
  PredictorConfig predictors;           // `predictors: {...}` used by model / hybrid and latency fill
  uint64_t world_seed = 0;              // `world_seed`: draws of the model reward model
  bool observe_price_changes = false;   // `observe_price_changes`: log2(price factor) per worker in the observation
  bool observe_predictions = false;     // `observe_predictions`: the router's predicted quality and cost per worker

  // Reads the `env` mapping (the caller has read `id` and `num_envs`) and calls r.finish().
  static ConductorEnvConfig parse(ConfigReader& r);
};

// Everything computed once per trace set and configuration, shared (read-only) by environments.
struct ConductorWorld {
  std::shared_ptr<const TraceSet> traces;
  QueryFeaturizer featurizer;
  int feature_dim = 0;
  std::vector<float> features;           // [n_queries x feature_dim]
  std::shared_ptr<const WorldPredictors> predictors;  // null for pure replay of latency-logged traces
  OutcomeTable outcomes;                 // over all trace models
  std::vector<int> workers;              // env worker k -> trace model index
  std::vector<std::string> worker_names;
  std::vector<double> trust;             // mean training-split quality per env worker (most_trusted)
  std::vector<double> expected_cost;     // mean training-split cost per env worker (prices, budget cap)
  double cost_scale = 1.0;               // max expected_cost (observation normalization)
  double latency_scale = 1.0;            // max mean training latency
  std::vector<uint32_t> split_queries;   // query indices of the configured split, in file order
  std::vector<std::string> split_tasks;  // distinct tasks of the split (sorted)
  std::vector<std::vector<uint32_t>> queries_by_task;  // split queries of each split task

  // Loads (or synthesizes) the traces of `config` and precomputes everything.
  static std::shared_ptr<const ConductorWorld> build(const ConductorEnvConfig& config);
  // Same from traces already in memory (tests, benchmarks).
  static std::shared_ptr<const ConductorWorld> build(const ConductorEnvConfig& config,
                                                     std::shared_ptr<const TraceSet> traces);
};

// The world's predictors, or (worlds that replay latency-logged traces fit none) predictors fitted
// on its training split with `config`; `what` names the caller in the error for an empty train split.
std::shared_ptr<const WorldPredictors> world_predictors(const ConductorWorld& world, const PredictorConfig& config,
                                                        const std::string& what);

// The world spec of `world` under `config` (the `world` object of export manifests): what serving
// needs to rebuild this environment's observations and finish rules. With env.observe_predictions
// it carries `predictors` (world_predictors() when null) restricted to the env workers.
ConductorWorldSpec conductor_world_spec(const ConductorWorld& world, const ConductorEnvConfig& config,
                                        std::shared_ptr<const WorldPredictors> predictors = nullptr);

class ConductorEnv : public VectorEnv, private LoggedDecisionReplay {
 public:
  ConductorEnv(const ConductorEnvConfig& config, std::shared_ptr<const ConductorWorld> world, int num_envs);

  const EnvSpec& spec() const override { return spec_; }
  int num_envs() const override { return num_envs_; }
  void reset(uint64_t seed) override;
  void step(const int32_t* actions) override;
  const float* obs() const override { return obs_.data(); }
  const uint8_t* action_mask() const override { return mask_.data(); }
  const float* reward() const override { return reward_.data(); }
  const uint8_t* terminated() const override { return terminated_.data(); }
  const uint8_t* truncated() const override { return truncated_.data(); }
  const float* final_obs() const override { return final_obs_.data(); }
  const ConductorStateView* state_views() const override;
  const std::vector<EpisodeRecord>& finished() const override { return finished_; }
  // Every expert: best_fixed (the best single worker), per_task (by its task's means), router (by
  // the query's predicted quality and cost; reads the world's predictors, or fits its own on the
  // training split when the world has none), cascade (`conductor eval`'s cascade baseline: its chain,
  // answer scorers and, per cost weight, the threshold with the best training-split utility;
  // finishes with the `last` rule, or the default rule when `last` is not among finish_rules).
  bool expert_actions(int32_t* actions, Expert expert = Expert::kBestFixed) const override;
  // One pass is the split (sequential mode).
  std::size_t pass_size() const override { return split_size(); }
  // The serving world (conductor_world_spec), its action names and the reward weights.
  std::unique_ptr<EnvExportSpec> export_spec() const override;
  LoggedDecisionReplay* logged_replay() override { return this; }
  // Exact snapshot (RNG streams, episode states, observations, fault windows, sequential cursor,
  // budget multiplier) for bit-for-bit resume; load_state() needs an env of the same config and size.
  bool supports_state() const override { return true; }
  // Rank shards (docs/distributed.md): sub-environment i draws from stream first + i, so the shards
  // of W ranks replay exactly the sub-environments of one process with W * num_envs. Sampling mode
  // only (a sequential pass is one cursor over the split).
  bool set_first_index(int first) override {
    if (first != 0 && config_.sequential) return false;
    first_ = first;
    return true;
  }
  std::string save_state() const override;
  void load_state(const std::string& blob) override;
  // Budget mode lagrange: the window's {sum of episode costs, episodes}; adapt() takes their sums
  // (over processes) and takes one dual step of the multiplier, reported as charts/budget_*.
  std::vector<double> adaptation_stats() const override;
  void adapt(const std::vector<double>& summed_stats, std::vector<std::pair<std::string, double>>* report) override;
  std::vector<double> adaptive_state() const override;
  void set_adaptive_state(const std::vector<double>& state) override;

  const ObsLayout& layout() const { return writer_.layout(); }
  const ConductorObsWriter& writer() const { return writer_; }
  const ConductorWorld& world() const { return *world_; }
  const ConductorEnvConfig& config() const { return config_; }
  int n_workers() const { return M_; }
  ConductorStateView state_view(int env) const;

  // Sequential mode: true once every query of the split has finished at least once.
  bool sequential_pass_complete() const { return pass0_finished_ >= world_->split_queries.size(); }
  std::size_t split_size() const { return world_->split_queries.size(); }

  // The cost weight of sub-environment i's current episode (reward.w_cost unless cost-conditioned).
  double episode_cost_weight(int i) const {
    return w_cost_.empty() ? config_.reward.w_cost : w_cost_[static_cast<std::size_t>(i)];
  }

  // Budget mode (lagrange): the trainer adapts the multiplier between updates (adapt()).
  BudgetController& budget() { return budget_; }
  const BudgetController& budget() const { return budget_; }

  // Extras of EpisodeRecord, in order (spec().extra_names).
  enum Extra { kQuality = 0, kCostUsd, kLatencyS, kCalls, kFailedCalls, kAnswered, kQueryIndex, kPass, kNumExtras };

 private:
  struct Slot {
    uint32_t query = 0;
    int64_t pass = 0;
    int64_t episode = 0;
    int steps = 0;
    int n_calls = 0;
    int n_answers = 0;
    double cum_cost = 0, cum_latency = 0;
    double ret = 0;
  };
  // The state of sub-environment i; the query text and task only when with_text (the step loop
  // never reads them).
  ConductorStateView view_of(int i, bool with_text) const;
  void begin_episode(int i);
  void refresh_mask(int i);
  void do_call(int i, int k);
  void do_finish(int i, FinishRule rule, bool truncated);
  int final_call(int i, FinishRule rule) const;  // index into calls, -1 = no answer

  ConductorEnvConfig config_;
  std::shared_ptr<const ConductorWorld> world_;
  FaultModel faults_;
  BudgetController budget_;
  EnvSpec spec_;
  ConductorObsWriter writer_;
  int num_envs_ = 0, M_ = 0, R_ = 0, A_ = 0;
  std::vector<FinishRule> rules_;
  int default_rule_action_ = 0;

  // Outcomes of env workers, [n_queries x M], packed for the step loop.
  struct Cell {
    double cost_usd;
    float quality;
    float latency_s;
    int32_t answer;
    int32_t output_tokens;
    uint8_t error;
    uint8_t available;
  };
  std::vector<Cell> cells_;
  // Per query, bit k = worker k has an outcome (when M <= 64): a 8-byte read at reset instead of a
  // walk over the query's cells (which would miss the cache on every random query).
  std::vector<uint64_t> available_bits_;

  std::vector<float> obs_, final_obs_, reward_;
  std::vector<uint8_t> mask_, terminated_, truncated_;
  std::vector<EpisodeRecord> finished_;
  std::vector<std::vector<double>> spare_extras_;  // recycled EpisodeRecord::extras (no allocation in step)
  std::size_t spare_top_ = 0;
  std::vector<Slot> slots_;
  std::vector<Rng> rngs_;
  std::vector<double> w_cost_;           // [num_envs] episode cost weights (cost-conditioned only)
  std::vector<ConductorStepView> views_; // [num_envs x max_steps] calls of the current episodes
  std::vector<float> call_quality_;      // [num_envs x max_steps] their hidden quality
  std::vector<uint8_t> pool_, called_;   // [num_envs x M]
  std::vector<FaultEffects<float>> fx_;
  std::vector<int> scratch_;             // [num_envs x M] pool sampling
  std::vector<float> unit_price_factor_; // [M] of ones when there are no faults
  mutable std::vector<ConductorStateView> state_cache_;  // state_views()
  uint64_t cursor_ = 0;
  int first_ = 0;  // stream index of sub-environment 0 (set_first_index)
  std::size_t pass0_finished_ = 0;
  int expert_worker_ = 0;
  // Per-task expert: mean training-split quality and cost of every worker over
  // the queries of each task ([tasks x M]); task_of_query_ maps a query to its row, -1 for a task with
  // no training query (the global means then apply).
  std::vector<int> task_of_query_;
  std::vector<double> task_quality_, task_cost_;
  mutable std::shared_ptr<const WorldPredictors> router_predictors_;  // the router and cascade experts
  ConductorWorldSpec world_spec_;  // what the observation writer and exports are built from
  mutable std::shared_ptr<const CascadeExpert> cascade_expert_;              // built at its first use
  // The experts' choice for sub-environment i (mask m, episode cost weight wc): a worker, or -1 for
  // "finish".
  int router_worker(int i, const uint8_t* m, double wc) const;
  int cascade_action(int i, const uint8_t* m, double wc) const;
  int fixed_worker(int i, Expert kind, double wc) const;  // best_fixed / per_task

  // LoggedDecisionReplay: the world's traces, workers and this env's reward weights; a first-step
  // pass over the split (sequential mode).
  const TraceSet& replay_traces() const override { return *world_->traces; }
  const std::vector<std::string>& replay_workers() const override { return world_->worker_names; }
  const RewardConfig& replay_reward() const override { return config_.reward; }
  void replay_first_steps(uint64_t seed, const std::function<void(const ObsBatch&, int32_t*)>& act,
                          const FirstStep& visit, const std::string& what) override;
  bool has_faults_ = false;
};

// Registers "conductor" in the environment registry (called from envs/registry.cpp).
namespace builtin_envs {
void register_conductor();
}

}  // namespace conductor
