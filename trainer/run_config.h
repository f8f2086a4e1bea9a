// The run config of `conductor train` (top-level YAML), parsed once with core/config.h.
// Every key, its default and its meaning are documented in docs/training.md.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "envs/env.h"
#include "policies/registry.h"

namespace conductor {

struct PpoConfig {
  int num_steps = 128;           // rollout length per environment; batch = num_envs * num_steps
  double learning_rate = 2.5e-4; // Adam
  bool anneal_lr = true;         // linear decay to 0 over the run
  double gamma = 0.99;
  double gae_lambda = 0.95;
  int num_minibatches = 4;       // batch must divide evenly
  int update_epochs = 4;
  bool norm_adv = true;          // per-minibatch advantage normalization
  double clip_coef = 0.2;        // surrogate clip
  bool clip_vloss = true;        // clipped value loss (same clip_coef)
  double ent_coef = 0.01;
  double vf_coef = 0.5;
  double max_grad_norm = 0.5;
  double target_kl = 0.0;        // 0 = off; else stop the update when approx_kl > 1.5 * target_kl
  double adam_eps = 1e-5;
  double ref_kl_coef = 0.0;      // KL penalty to the frozen initial (post warm start) policy
  std::string where;             // file:line of ppo.num_minibatches (errors found when sizes are known)
  static PpoConfig parse(ConfigReader r);
};

struct GrpoConfig {
  int group_size = 8;            // G rollouts per query (env.num_envs = queries per update)
  double learning_rate = 1e-3;
  bool anneal_lr = true;
  int update_epochs = 1;
  int num_minibatches = 1;
  double clip_coef = 0.2;
  double ent_coef = 0.0;
  double kl_coef = 0.0;          // KL (k3) to the frozen reference policy; 0 = no reference
  double max_grad_norm = 0.5;
  double adam_eps = 1e-5;
  // Advantage scaling of the group-centred returns (Dr. GRPO, Liu et al. 2025, drops the division):
  //   none (default) | group: / the group's std (DeepSeekMath's GRPO) | batch: / the std over every
  //   episode of the update. The default is none because the std division makes GRPO collapse to
  //   the cheapest worker under a cost-weighted reward (docs/training.md, RouterBench validation).
  std::string scale_rewards = "none";
  // How the surrogate averages over the update's rows (one row per step):
  //   step: every step weighs the same (longer episodes weigh more in total)
  //   episode: every episode weighs the same (GRPO's per-sequence mean)
  //   constant: every step weighs the same and the sum is divided by episodes x max_episode_steps
  //             (Dr. GRPO's constant normalizer: no length bias in either direction)
  std::string loss_agg = "step";
  static GrpoConfig parse(ConfigReader r);
};

struct BcConfig {
  bool enabled = false;          // imitate the env's best fixed strategy before RL
  int samples = 4096;            // expert (obs, action) pairs collected
  int epochs = 10;
  int minibatch_size = 256;
  double learning_rate = 1e-3;
  // Which expert to imitate: best_fixed (VectorEnv::expert_actions, one strategy for every query) or
  // per_task (VectorEnv::task_expert_actions, the best fixed strategy of each query's task) or router
  // (VectorEnv::router_expert_actions, the router rule on each query's predicted quality and cost).
  std::string expert = "best_fixed";
  // Warm start from logged decisions instead of the env's expert (trainer/logged_bc.cpp): a trace
  // file with /decisions whose queries env.traces holds; the logged first calls are imitated,
  // weighted by their outcome.
  std::string logs;
  std::string weighting = "advantage";  // advantage (importance-corrected AWR) | uniform (plain imitation)
  double beta = 0.1;                    // AWR temperature on standardized advantages
  bool importance = true;               // advantage weighting: divide by the logging propensity
  double max_weight = 20.0;             // cap on a row's weight
  static BcConfig parse(ConfigReader r);
};

struct LogConfig {
  bool jsonl = true;             // RUN_DIR/metrics.jsonl
  bool tensorboard = true;       // RUN_DIR/events.out.tfevents.*
  bool console = true;           // progress line on stderr
  int console_every = 10;        // updates between lines when stderr is not a terminal
  static LogConfig parse(ConfigReader r);
};

// After training: the greedy policy and the env's best fixed strategy (expert_actions) on an
// evaluation variant of the env (the run config with `set` overrides, one sub-environment).
struct FinalEvalConfig {
  bool enabled = false;
  std::vector<std::string> set;  // e.g. [env.split=test, env.mode=sequential]
  int episodes = 1000;           // or one pass when the env reports a "pass" extra
  static FinalEvalConfig parse(ConfigReader r);
};

struct RunConfig {
  uint64_t seed = 1;
  std::string env_id;
  int num_envs = 8;
  std::string algo = "ppo";      // a registered algorithm: ppo | grpo | bc (trainer/algorithm.h)
  PolicyConfig policy;
  PpoConfig ppo;
  GrpoConfig grpo;
  BcConfig bc;
  int64_t total_steps = 100000;  // environment steps
  int checkpoint_every = 10;     // updates; 0 = only at the end (and on SIGINT/SIGTERM)
  int checkpoint_keep = 3;       // newest checkpoints kept (older ones are deleted); >= 2: a resume
                                 // falls back to the previous one when the newest cannot be loaded
  int threads = 1;               // compute threads: LibTorch's intra-op pool and OpenBLAS's together
  LogConfig log;
  FinalEvalConfig final_eval;

  // Processes of a data-parallel run (set by the trainer from its process group, never read from
  // the YAML): env.num_envs is per process, the global batch is world_size times larger.
  int world_size = 1;

  // The `env` mapping: make_env(env_id, *env_cfg, n) reads the environment's own keys.
  std::optional<ConfigReader> env_cfg;

  // Parses every section (and checks the algorithm's constraints on them).
  static RunConfig parse(ConfigReader r);
  std::unique_ptr<VectorEnv> make_env_instance(int num_envs) const;
};

// Parses the whole run config (and builds the environment once, so its keys are checked) without
// training. Throws ConfigError naming file:line and key on the first problem.
void check_run_config(const ConfigDoc& doc);

// FNV-1a 64 (core/hash.h) of the resolved YAML without its `log` section (and comments): identifies a config for
// resume, so logging options may differ between the original run and its resumption.
std::string config_fingerprint(const std::string& resolved_yaml);

}  // namespace conductor
