// Training algorithms in the shape Stable-Baselines3 made familiar: collect_rollouts() steps the
// environments with the current policy into a RolloutBuffer, train(buffer) makes one policy update
// from it and returns metrics. Algorithms are registered by id with their own config section
// (trainer/algorithm_registry.h): ppo (trainer/ppo.cpp), grpo (trainer/grpo.cpp), bc (trainer/bc.cpp). The run loop
// (trainer/trainer.cpp) owns everything they share, in a TrainerState.
#pragma once

#include <torch/torch.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/random.h"
#include "envs/env.h"
#include "policies/policy_model.h"
#include "trainer/metrics.h"
#include "trainer/algorithm_registry.h"
#include "trainer/process_group.h"
#include "trainer/rollout_buffer.h"
#include "trainer/run_config.h"
#include "trainer/train.h"

namespace conductor {

// Finished episodes: this update's statistics and the window of the last 100 returns.
class EpisodeLog {
 public:
  static constexpr std::size_t kReturnWindow = 100;  // charts/return_ma100

  void begin_update(const std::vector<std::string>& extra_names);
  void record(const EpisodeRecord& r);
  // charts/episodes, episodic_return, episodic_length, the env's extras, return_ma100, learning_rate.
  void write(Metrics& m, double learning_rate) const;
  // <prefix>episodes, episodic_return, episodic_length and the extras of this update only.
  void write_episodes(Metrics& m, const std::string& prefix) const;
  int64_t count() const { return count_; }
  // Data-parallel runs: this update's statistics (episodes, sums of returns, lengths and extras)
  // and the episode total become sums over every rank. The window of recent returns stays this
  // rank's own (charts/return_ma100 is rank 0's window).
  void reduce(ProcessGroup& group);

  int64_t total = 0;                 // episodes since the start of the run
  std::deque<double> recent_returns;

 private:
  std::vector<std::string> extra_names_;
  double sum_return_ = 0.0, sum_length_ = 0.0;
  int64_t count_ = 0;
  std::vector<double> extra_sums_;
};

// Everything the run loop and the algorithms share.
struct TrainerState {
  RunConfig cfg;
  TrainOptions options;
  std::string run_dir;
  EnvSpec env_spec;
  std::unique_ptr<PolicyModel> model;
  std::unique_ptr<PolicyModel> reference;  // frozen KL reference, or null
  std::unique_ptr<torch::optim::Adam> optimizer;
  Rng rng;                                 // minibatch order and action sampling
  int64_t update = 0, global_step = 0;
  EpisodeLog episodes;
  std::shared_ptr<ProcessGroup> group = std::make_shared<LocalProcessGroup>();

  // Action sampling. By default one stream (rng) draws for every row in row order. Data-parallel
  // runs (and TrainOptions::per_env_sampling) draw each sub-environment's actions from its own
  // stream, keyed by the sub-environment's global index (rank * num_envs + i), so W ranks with N
  // sub-environments each draw what one process with W * N draws (docs/distributed.md).
  bool per_env_sampling = false;
  std::map<int64_t, Rng> sampling_streams;
  // Global index of this process's sub-environment 0, and whether the environments seed their
  // sub-environments from it (VectorEnv::set_first_index); otherwise shard_seed() separates ranks.
  int64_t first_env = 0;
  bool envs_indexed = true;

  // A uniform draw for the action of the sub-environment with global index `global_env`.
  double action_uniform(int64_t global_env);
  // Makes `env` this process's shard (set_first_index(first_env)); records when it cannot.
  void shard(VectorEnv& env);
  // The seed for resetting this process's environments: `seed` itself, or, when the environments
  // cannot be indexed in a data-parallel run, a seed derived from `seed` and the rank.
  uint64_t shard_seed(uint64_t seed) const;

  // Throws TrainingDiverged naming the metric when v is NaN or infinite.
  void check_finite(const char* name, double v) const;
  // zero_grad, backward, gradients averaged over the processes, clipped to max_grad_norm (0: no
  // clip), the optimizer step; returns the gradient norm before clipping (checked finite).
  double optimizer_step(torch::Tensor loss, const std::vector<torch::Tensor>& params, double max_grad_norm);
  // With a reference policy and coef > 0: adds coef * k3 KL(policy || reference) on the rows to the
  // loss and returns that KL; otherwise 0.
  double add_reference_kl(torch::Tensor& loss, double coef, const torch::Tensor& new_log_probs, const EncodedObs& obs,
                          const torch::Tensor& rows, const torch::Tensor& masks, const torch::Tensor& actions);
  // The mean over processes of a per-process value (for decisions every process must take alike).
  double agreed_mean(double local) const;
};

// A random permutation of 0..n-1 from `rng` (Fisher-Yates), so minibatch order is part of the
// checkpointed state and identical on every platform.
std::vector<int64_t> permutation(int64_t n, Rng& rng);

void set_learning_rate(torch::optim::Adam& opt, double lr);

class Algorithm {
 public:
  virtual ~Algorithm() = default;

  // The optimizer's settings (learning rate and Adam epsilon of the algorithm's own section) and
  // the KL-to-reference coefficient (0: no reference policy is kept).
  virtual double base_learning_rate() const = 0;
  virtual double adam_eps() const = 0;
  virtual double reference_kl_coef() const = 0;
  // Builds the algorithm's environments (run once, after the policy exists).
  virtual void build_envs(const RunConfig& cfg) = 0;
  // Starts a fresh run's environments (not called on resume).
  virtual void reset_envs(uint64_t seed) = 0;
  // Environments whose state lives across updates: checkpointed with the run (may be empty).
  virtual std::vector<VectorEnv*> persistent_envs() = 0;
  // Every environment instance (their adaptive parameters are kept in step).
  virtual std::vector<VectorEnv*> all_envs() = 0;

  // The learning rate of the update state.update (its schedule), and whether training is done.
  virtual double learning_rate(const TrainerState& state) const = 0;
  virtual bool finished(const TrainerState& state) const = 0;
  virtual int64_t planned_updates(const RunConfig& cfg) const = 0;

  // Steps the environments with the current policy and fills `buffer`; finished episodes go to
  // state.episodes, steps to state.global_step.
  virtual void collect_rollouts(TrainerState& state, RolloutBuffer& buffer) = 0;
  // One update from `buffer`; appends its metrics (losses/*, ...) to `m`.
  virtual void train(TrainerState& state, RolloutBuffer& buffer, Metrics& m) = 0;
};

// The algorithm cfg.algo names (trainer/algorithm_registry.h), built for cfg.
std::unique_ptr<Algorithm> make_algorithm(const RunConfig& cfg);

// Behaviour cloning as a warm start (bc_warmstart.enabled): imitates the env's best fixed strategy
// on a fresh environment instance, with its own optimizer over the policy's logit parameters.
// Returns bc/loss, bc/accuracy, bc/samples at update 0.
Metrics bc_warm_start(TrainerState& state);
// `bc.epochs` epochs of minibatch masked cross-entropy of buf's actions (minibatch order from `rng`),
// averaged over the minibatch, or with `weighted` weighted by buf.advantages (sum w log p / sum w);
// writes bc/loss (last epoch's mean), bc/accuracy (greedy action == buf's) and bc/samples into m.
void imitate(TrainerState& state, const BcConfig& bc, RolloutBuffer& buf, torch::optim::Optimizer& opt,
             const std::vector<torch::Tensor>& params, Rng& rng, bool weighted, Metrics& m);
// With bc_warmstart.logs: imitation of logged decisions weighted by their outcome
// (trainer/logged_bc.cpp). Returns bc/* metrics at update 0.
Metrics logged_warm_start(TrainerState& state, const std::string& resolved_yaml);

}  // namespace conductor
