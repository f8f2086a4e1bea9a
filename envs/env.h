// The batched environment interface every Conductor environment implements.
//
// A VectorEnv steps `num_envs()` independent episodes together and resets each one automatically
// when it ends. Buffers are owned by the environment and stay valid until the next reset/step.
//
// Contract:
//  - reset(seed) starts every sub-environment; sub-environment i is seeded with derive_seed(seed, i),
//    so a given seed always gives identical trajectories for identical actions.
//  - step(actions) takes one action per sub-environment. actions[i] must be allowed by
//    action_mask() row i (checked in debug builds: an InternalError names the env and action;
//    release builds treat a masked action as undefined behaviour of the policy, not of the env).
//  - After step, reward()/terminated()/truncated() describe the transition just taken. When
//    terminated[i] or truncated[i] is 1, the episode's last observation is in final_obs() row i
//    (needed to bootstrap the value of a truncated episode) and obs() row i already holds the first
//    observation of the next episode.
//  - finished() lists the episodes that ended in this step, with their return and the
//    environment-specific extras named by spec().extra_names (e.g. quality, cost_usd, latency_s).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "world/observation.h"

namespace conductor {

struct EnvExportSpec;         // envs/env_hooks.h
class LoggedDecisionReplay;   // envs/env_hooks.h

// The named experts an environment kind may offer (VectorEnv::expert_actions); their config names
// (bc_warmstart.expert) are expert_names() in this order.
enum class Expert { kBestFixed, kPerTask, kRouter, kCascade };
const std::vector<std::string>& expert_names();  // best_fixed, per_task, router, cascade
const std::string& expert_name(Expert expert);

struct EnvSpec {
  std::string id;                        // registry id, e.g. "conductor", "cartpole", "bandit"
  int obs_dim = 0;
  int n_actions = 0;                     // discrete actions
  int max_episode_steps = 0;             // truncation horizon
  std::vector<std::string> action_names; // n_actions entries
  std::vector<std::string> extra_names;  // per finished episode extras
};

struct EpisodeRecord {
  int env_index = 0;
  double episode_return = 0.0;
  int length = 0;
  bool truncated = false;
  std::vector<double> extras;  // same order as EnvSpec::extra_names
};

class VectorEnv {
 public:
  virtual ~VectorEnv() = default;
  virtual const EnvSpec& spec() const = 0;
  virtual int num_envs() const = 0;

  virtual void reset(uint64_t seed) = 0;
  virtual void step(const int32_t* actions) = 0;

  // [num_envs x obs_dim], row-major.
  virtual const float* obs() const = 0;
  // [num_envs x n_actions], 1 = allowed.
  virtual const uint8_t* action_mask() const = 0;
  virtual const float* reward() const = 0;
  virtual const uint8_t* terminated() const = 0;
  virtual const uint8_t* truncated() const = 0;
  virtual const float* final_obs() const = 0;
  virtual const std::vector<EpisodeRecord>& finished() const = 0;

  // The current observations as policies read them: the dense rows, the mask, and the state views
  // when the environment has them (state_views()).
  ObsBatch observations() const {
    ObsBatch b = dense_batch(obs(), action_mask(), num_envs(), spec().obs_dim, spec().n_actions);
    b.states = state_views();
    return b;
  }
  // The last observations of the episodes that ended in the last step (dense only; see final_obs()).
  ObsBatch final_observations() const {
    return dense_batch(final_obs(), action_mask(), num_envs(), spec().obs_dim, spec().n_actions);
  }

  // ---- Optional capabilities (the defaults say "unsupported"; the trainer adapts) ----

  // Data-parallel shards (docs/distributed.md): after set_first_index(k), reset(seed) seeds
  // sub-environment i with derive_seed(seed, k + i), so the shards of ranks 0..W-1 (k = rank *
  // num_envs) together replay exactly the sub-environments of one process with W * num_envs. Returns
  // false when the environment cannot (k != 0); the trainer then seeds each rank's shard from the
  // rank instead (independent episodes, not those of the single-process run).
  virtual bool set_first_index(int first) { return first == 0; }

  // Exact snapshot of every sub-environment (RNG streams, episode states, step counters, current
  // observations), so that training resumed from a checkpoint continues bit-for-bit. load_state()
  // takes a blob produced by save_state() of an environment built from the same config and
  // num_envs, and throws conductor::Error otherwise. Environments without support return false
  // from supports_state(); the trainer then re-seeds them on resume and says the resume is inexact.
  virtual bool supports_state() const { return false; }
  virtual std::string save_state() const { return {}; }
  virtual void load_state(const std::string& blob) {}

  // [num_envs] structured states of the current episodes (the conductor's ConductorStateView), or
  // null for environments that only have the dense encoding. Valid until the next step/reset.
  virtual const ConductorStateView* state_views() const { return nullptr; }

  // Parameters the environment adapts between policy updates (the conductor's Lagrange budget
  // multiplier). The trainer, after each update's rollouts: stats = adaptation_stats() (additive
  // statistics of the window since the last adapt, e.g. {sum of costs, episodes}); sums them over
  // the training processes (and over the environment instances of one process); calls
  // adapt(summed) on every instance, which takes the step, clears the window and appends what it
  // changed to `report` (metric name, value). adaptive_state() / set_adaptive_state() are the
  // adapted parameters for checkpoints. Defaults: nothing adapts.
  virtual std::vector<double> adaptation_stats() const { return {}; }
  virtual void adapt(const std::vector<double>& summed_stats, std::vector<std::pair<std::string, double>>* report) {}
  virtual std::vector<double> adaptive_state() const { return {}; }
  virtual void set_adaptive_state(const std::vector<double>& state) {}

  // ---- Hooks: what an environment kind offers generic code (trainer, policies, eval) ----
  // Generic code reaches a kind's extras only through these, never by naming a concrete env
  // (docs/architecture.md). The defaults say "not offered".

  // A named expert's actions for the current observations (one per sub-environment, always allowed
  // by action_mask()), for behaviour cloning and final_eval's baseline:
  //   kBestFixed  the best fixed strategy, e.g. the best single worker on the training split;
  //   kPerTask    the best fixed strategy of each episode's task (a policy can only imitate it by
  //               reading the task from its observation);
  //   kRouter     a per-query rule, e.g. the worker maximising predicted quality - cost weight x
  //               predicted cost from the environment's fitted predictors.
  //   kCascade    a multi-step rule: call workers from cheap to expensive and stop at the first
  //               answer confident enough (the confidence may read what earlier answers said).
  // Returns false (and writes nothing) when the environment offers no such expert.
  virtual bool expert_actions(int32_t* actions, Expert expert = Expert::kBestFixed) const { return false; }
  // Episodes in one sequential pass over the environment's query set (the episodes a "pass" extra
  // counts), or 0 when it has no such pass.
  virtual std::size_t pass_size() const { return 0; }
  // What an export records about the environment a policy was trained on (envs/env_hooks.h). The
  // default: its action names, no serving world.
  virtual std::unique_ptr<EnvExportSpec> export_spec() const;
  // Replay of logged decisions (bandit logs of served calls) through this environment, for warm
  // starts from logs and off-policy evaluation (envs/env_hooks.h), or null.
  virtual LoggedDecisionReplay* logged_replay() { return nullptr; }
};

}  // namespace conductor
