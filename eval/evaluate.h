// `conductor eval`: full-information replay of conductor checkpoints next to the baselines, and
// the report (report.json, report.md, frontier.svg). Semantics: docs/evaluation.md.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/json_util.h"
#include "envs/conductor_env.h"
#include "eval/metrics.h"
#include "world/replay_table.h"
#include "policies/policy.h"

namespace conductor::eval {

// A trained conductor: its policy and the environment configuration it was trained with.
struct ConductorCheckpoint {
  std::string path;             // as given (run folder or checkpoint folder)
  std::string checkpoint_dir;   // resolved
  std::string run_dir;          // folder holding config.yaml
  std::shared_ptr<const Policy> policy;
  ConductorEnvConfig env;       // the run's `env` mapping
  std::vector<std::string> trained_workers;  // empty when unknown
};

// Loads a run folder (newest checkpoint) or a checkpoint folder inside a run folder. Throws
// conductor::Error naming the path when it is neither, when its env is not `conductor`, or when
// its config cannot be read.
ConductorCheckpoint load_conductor_checkpoint(const std::string& path);

// The environment configuration used to replay `ck` on `traces_path` / `split`: the checkpoint's
// own configuration with sequential query order, no faults, a fixed pool and replayed outcomes.
ConductorEnvConfig replay_env_config(const ConductorCheckpoint& ck, const std::string& traces_path, Split split);

// Throws conductor::Error when the checkpoint's worker list (or action/observation shape) differs
// from the environment built on the evaluation traces, naming the workers missing on either side.
void check_compatible(const ConductorCheckpoint& ck, const ConductorEnv& env, const std::string& traces_path);

// Throws conductor::Error, before any environment is built, when a worker of the checkpoint is not
// a model of `traces` (naming the missing workers and the traces' models).
void check_workers_present(const ConductorCheckpoint& ck, const TraceSet& traces, const std::string& traces_path);

// Replay of `policy` over every query of the environment's split (sequential mode), one episode
// per query: greedy actions, or actions sampled from the policy (seeded per step from `seed`).
// Returns the results of the rows of `table` (same order).
std::vector<QueryResult> replay_policy(const Policy& policy, ConductorEnv& env, const ReplayTable& table,
                                       uint64_t seed, bool greedy = true);

struct EvalOptions {
  std::vector<std::string> checkpoints;  // first = "conductor"; all together = its frontier
  std::vector<std::string> labels;       // optional names of the checkpoints (same count)
  std::string traces_path;
  Split split = Split::kTest;
  // Router/cascade tuning (USD weight, finite and >= 0); unset = from the first checkpoint (else 0).
  std::optional<double> cost_weight;
  uint64_t seed = 0;                     // random baseline and environment seeds
  int num_envs = 16;
  bool greedy = true;                    // false: sample the conductor's actions (seeded)
  int aiq_bootstrap = 1000;              // paired bootstrap resamples of frontier AIQ (0 = none)
  // Cost-conditioned checkpoints: extra frontier points. Refused when no checkpoint is
  // cost-conditioned (they would be ignored); a warning names each checkpoint that is not.
  std::vector<double> cost_weights;
  // A fault for the whole evaluated split, applied to the conductors (through the environment's
  // fault injection, world/faults.h) and the baselines alike (docs/evaluation.md, "Fault scenarios"):
  //   none | down:W (calls to W fail: error after 30 s, no cost) | down-announced:W (W is known to be
  //   down: masked for the conductor, left out by the router and the cascade) | slow:W:F (latency
  //   x F) | price:W:F (cost x F; the conductor observes the price, the router prices with it)
  std::string scenario = "none";
  // --select-on SPLIT: checkpoints that share a --label are candidates for one frontier point; each
  // is replayed greedily on this split at its own reward weights and the one with the highest mean
  // reward (w_quality x quality - w_cost x USD - w_latency x seconds) is the one evaluated on `split`
  // under that label (docs/evaluation.md, "Selection on validation"). Unset: no selection.
  std::optional<Split> select_on;
};

// A fault scenario (EvalOptions::scenario), parsed; throws naming the accepted forms.
struct Scenario {
  enum Kind { kNone, kDown, kDownAnnounced, kSlow, kPrice };
  Kind kind = kNone;  // --scenario none | down | down-announced | slow | price
  std::string worker;
  double factor = 1.0;
};
Scenario parse_scenario(const std::string& text);
// The scenario as an environment fault lasting the whole split (the conductors' replay).
void add_scenario_fault(const Scenario& scenario, ConductorEnvConfig& cfg);
// The same fault on a full-information table (the baselines), by the environment's per-call rule
// (world/faults.h, apply_faults): a down worker's cells fail (quality 0, no cost, 30 s), a slow
// one's latencies and a repriced one's costs are multiplied. Returns the faulted worker's table
// index (-1 for none); throws naming the worker when the table lacks it.
int apply_scenario(const Scenario& scenario, ReplayTable& table);

// Runs everything and returns report.json.
json run_evaluation(const EvalOptions& options);

// report.md text and frontier.svg text from report.json.
std::string report_markdown(const json& report);
std::string frontier_svg(const json& report);

// Writes report.json, report.md and frontier.svg into `dir` (atomically), and the per-query
// outcomes of every frontier point (report["per_query"]) as outcomes.json; returns report.md.
std::string write_report(const json& report, const std::string& dir);

// `conductor eval-pool`: the paired bootstrap of frontier AIQ pooled over several evaluations of the
// same split (one per training seed), from their outcomes.json files. Returns the pooled report
// (families' mean AIQ over the runs and intervals, conductor minus each family); throws naming the
// file when the runs do not cover the same queries and families.
json pool_evaluations(const std::vector<std::string>& report_dirs, int resamples, uint64_t seed);
std::string pooled_markdown(const json& pooled);

}  // namespace conductor::eval
