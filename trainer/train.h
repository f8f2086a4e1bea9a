// `conductor train`: runs a training job described by a run config into a run folder.
//
// Run folder (documented in docs/training.md):
//   config.yaml            the resolved config (every key, defaults included)
//   run.json               format, version, seed, config fingerprint
//   metrics.jsonl          one line per update (deterministic: no wall-clock fields)
//   events.out.tfevents.*  TensorBoard scalars (one file per process)
//   checkpoints/update_NNNNNNNN/  model.pt, policy.json, optimizer.pt, state.json[, env_state.bin, ref.pt]
//   checkpoints/latest     name of the newest complete checkpoint
//
// Checkpoints are written at update boundaries into a temporary folder renamed into place, and
// `latest` is replaced atomically afterwards, so a SIGKILL at any moment leaves the previous
// checkpoint loadable (old checkpoints are renamed out of `update_*` before being deleted, and a
// resume removes the temporaries a killed process left). SIGINT/SIGTERM finish the current
// update, write a checkpoint and return with interrupted = true. A non-finite loss stops the run
// with TrainingDiverged (no checkpoint).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/error.h"
#include "trainer/metrics.h"

namespace conductor {

class ProcessGroup;  // trainer/process_group.h

class TrainingDiverged : public Error {
 public:
  explicit TrainingDiverged(const std::string& what) : Error(what) {}
};

struct TrainOptions {
  std::string run_dir;         // output folder (created; must not hold a run unless resume)
  bool resume = false;         // continue the run in run_dir from its newest checkpoint
  bool console = true;         // progress line on stderr (also needs log.console)
  // Test hooks: stop (checkpointing as on SIGINT) after this many updates of this process
  // (-1 = never); make the loss NaN at this update (-1 = never).
  int64_t stop_after_updates = -1;
  int64_t poison_loss_at_update = -1;
  // Data-parallel training (trainer/distributed.h, docs/distributed.md): the process group this
  // process belongs to (null: a single process). Rank 0 alone writes the run folder; every rank
  // steps its own shard of the environments.
  std::shared_ptr<ProcessGroup> group;
  // One action-sampling stream per sub-environment (always on in data-parallel runs): makes a
  // single-process run draw what W ranks with num_envs / W sub-environments each draw.
  bool per_env_sampling = false;
};

struct TrainResult {
  std::string run_dir;
  std::string checkpoint_dir;  // newest checkpoint
  int64_t updates = 0;
  int64_t global_step = 0;
  bool interrupted = false;
  double wall_seconds = 0.0;
  Metrics last;                // metrics of the last update
  bool resume_exact = true;    // false when the env could not restore its state
  // final_eval (empty when disabled): eval/return, eval/<extra>, eval/expert_return, ...
  Metrics final_eval;
};

// Parses `doc` (a run config with overrides applied), then trains. When options.resume, `doc`
// must resolve to the same config as run_dir/config.yaml (else conductor::Error says so).
TrainResult run_training(const ConfigDoc& doc, const TrainOptions& options);

// Loads the config of an existing run folder (run_dir/config.yaml) with `overrides` applied.
ConfigDoc load_run_config(const std::string& run_dir, const std::vector<std::string>& overrides);

// PPO update throughput for `conductor bench ppo`: an MLP (hidden 64x64) on random data of
// `batch` samples, `epochs` epochs of `minibatch` minibatches; returns samples per second
// (batch * epochs / seconds), best of `repeats`.
double bench_ppo_update(int batch, int epochs, int minibatch, int obs_dim, int n_actions, int threads,
                        int repeats);

}  // namespace conductor
