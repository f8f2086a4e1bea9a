// The run config of `conductor train` (top-level YAML), parsed once with core/config.h.
// Every key, its default and its meaning are documented in docs/training.md.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/error.h"
#include "envs/env.h"
#include "policies/registry.h"
#include "trainer/algorithm_registry.h"

namespace conductor {


struct BcConfig {
  bool enabled = false;          // imitate the env's best fixed strategy before RL
  int samples = 4096;            // expert (obs, action) pairs collected
  int epochs = 10;
  int minibatch_size = 256;
  double learning_rate = 1e-3;
  // Which of the env's named experts to imitate (VectorEnv::expert_actions): best_fixed (one strategy
  // for every query), per_task (the best fixed strategy of each query's task) or router (the router
  // rule on each query's predicted quality and cost).
  Expert expert = Expert::kBestFixed;
  // Warm start from logged decisions instead of the env's expert (trainer/logged_bc.cpp): a trace
  // file with /decisions whose queries env.traces holds; the logged first calls are imitated,
  // weighted by their outcome.
  std::string logs;
  std::string logs_where;               // file:line of `logs` (checked against the algorithm and env)
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
  std::string algo = "ppo";      // a registered algorithm: ppo | grpo | bc (trainer/algorithm_registry.h)
  PolicyConfig policy;
  // Every registered algorithm's own section (ppo, grpo, ...), by algorithm id, as its parse gave it.
  std::map<std::string, std::shared_ptr<const AlgorithmSettings>> algo_settings;
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

  // The parsed section of algorithm `id`, as the settings type its AlgorithmKind::parse returns.
  template <class T>
  const T& algorithm_settings(const std::string& id) const {
    const auto it = algo_settings.find(id);
    CONDUCTOR_CHECK(it != algo_settings.end() && it->second, "no parsed config section for algorithm '", id, "'");
    return static_cast<const T&>(*it->second);
  }
};

// What the run asks of its environment beyond stepping (bc_warmstart.logs: logged-decision replay);
// throws ConfigError at the key that asks when `env` does not offer it.
void check_env_offers(const RunConfig& cfg, VectorEnv& env);

// Parses the whole run config (and builds the environment once, so its keys are checked) without
// training. Throws ConfigError naming file:line and key on the first problem.
void check_run_config(const ConfigDoc& doc);

// FNV-1a 64 (core/hash.h) of the resolved YAML without its `log` section (and comments): identifies a config for
// resume, so logging options may differ between the original run and its resumption.
std::string config_fingerprint(const std::string& resolved_yaml);

}  // namespace conductor
