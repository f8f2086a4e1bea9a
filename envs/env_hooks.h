// What VectorEnv's hooks (envs/env.h) hand to generic code: the export record of an environment and
// the replay of logged decisions. An environment kind offers them by overriding export_spec() and
// logged_replay(); generic code (policies/export.cpp, trainer/logged_bc.cpp, eval/ope_policy.cpp)
// reads them here and never names the kind.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/json_util.h"
#include "envs/env.h"
#include "envs/live_world.h"
#include "world/reward.h"
#include "traces/trace_set.h"

namespace conductor {

struct EnvExportSpec {
  std::vector<std::string> action_names;
  json world = nullptr;   // the serving world's spec (manifest "world"), or null: not servable
  json reward = nullptr;  // the reward weights and budget (manifest "reward"), or null
  // The world `world` describes, built from it (null when not servable): an export checks that the
  // policy reads its first observation.
  std::shared_ptr<const LiveWorld> serving_world;
  // The query that check starts from: shapes only (a zero embedding stands in for the encoder's
  // when the world's features read one).
  LiveQuery probe_query;
};

// Logged decisions (bandit logs: one worker called per request, with its propensity and outcome)
// replayed through an environment: the observation the policy had at each logged query's first
// step is rebuilt from the environment's own query set, which must hold the logged queries
// (traces/store.h, match_logged_queries).
class LoggedDecisionReplay {
 public:
  virtual ~LoggedDecisionReplay() = default;
  // The query set observations are built from (logged queries are matched to it by id).
  virtual const TraceSet& replay_traces() const = 0;
  // Worker k is action k (CALL worker k).
  virtual const std::vector<std::string>& replay_workers() const = 0;
  // The reward weights of the environment (the reward of a logged outcome).
  virtual const RewardConfig& replay_reward() const = 0;

  // Called at the first step of each query of a pass: the observation batch, the row, the query
  // (an index into replay_traces()) and the actions just chosen for the batch.
  using FirstStep = std::function<void(const ObsBatch& obs, int row, std::size_t query, const int32_t* actions)>;
  // Resets with `seed` and steps one sequential pass over the environment's queries, choosing every
  // step's actions with `act`; calls `visit` once per query, at its first step (after `act`).
  // `what` names the pass in the error raised when it does not complete.
  virtual void replay_first_steps(uint64_t seed, const std::function<void(const ObsBatch&, int32_t*)>& act,
                                  const FirstStep& visit, const std::string& what) = 0;
};

// For each model of `logs`, the worker of `workers` with its name, or -1.
std::vector<int> workers_of_logged_models(const TraceSet& logs, const std::vector<std::string>& workers);

}  // namespace conductor
