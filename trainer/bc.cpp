// Behaviour cloning of one of the environment's named experts (VectorEnv::expert_actions with
// bc_warmstart.expert: best_fixed, the best fixed strategy; per_task, the best fixed strategy of each
// task; router, the router rule on each query's predictions): as a warm
// start before RL (bc_warmstart.enabled) and as an algorithm of its own (algo: bc), which repeats
// collect-then-imitate until total_steps environment steps.
#include <cmath>

#include "core/error.h"
#include "envs/episode_loop.h"
#include "trainer/algorithm.h"

namespace conductor {

namespace {

// Steps `env` with the expert's actions until `samples` (observation, expert action) rows are in
// `buf`; returns the environment steps taken.
int64_t collect_expert(TrainerState& s, VectorEnv& env, int samples, Expert which, RolloutBuffer& buf) {
  // The expert's name in error messages.
  const std::string what = which == Expert::kBestFixed ? std::string("expert strategy")
                           : which == Expert::kPerTask ? "per-task expert (bc_warmstart.expert: per_task)"
                                                       : expert_name(which) + " expert (bc_warmstart.expert: " +
                                                             expert_name(which) + ")";
  const int N = env.num_envs(), A = env.spec().n_actions;
  buf.clear();
  buf.n_actions = A;
  int64_t steps = 0;
  run_env_loop(
      env,
      [&](const ObsBatch& obs, int32_t* expert) {
        if (!env.expert_actions(expert, which))
          fail("behaviour cloning: environment '", env.spec().id, "' provides no ", what,
               " to imitate; set bc_warmstart.enabled: false (or another algo)",
               which != Expert::kBestFixed ? ", or bc_warmstart.expert: best_fixed" : "");
        for (int i = 0; i < N && buf.size() < samples; ++i) {
          if (expert[i] < 0 || expert[i] >= A || !obs.mask[int64_t(i) * A + expert[i]])
            throw InternalError("environment '" + env.spec().id + "' returned expert action " +
                                std::to_string(expert[i]) + " that its own mask forbids (sub-environment " +
                                std::to_string(i) + ")");
          EncodedObs row;
          s.model->encode(obs.row(i), row);
          buf.obs.append_row(row, 0);
          buf.add_step_row(obs, i, expert[i], 0.f);
        }
      },
      [&](VectorEnv&, const int32_t*) { steps += N; },
      [&] { return buf.size() >= samples; }, int64_t(samples) + 1, "behaviour cloning");
  return steps;
}

}  // namespace

void imitate(TrainerState& s, const BcConfig& bc, RolloutBuffer& buf, torch::optim::Optimizer& opt,
             const std::vector<torch::Tensor>& params, Rng& rng, bool weighted, Metrics& m) {
  PolicyModel& model = *s.model;
  const int64_t B = buf.size();
  const auto b_mask = buf.mask_tensor();
  const auto b_act = buf.action_tensor();
  const auto b_w = weighted ? buf.advantage_tensor() : torch::Tensor();
  const int64_t mb = std::min<int64_t>(bc.minibatch_size, B);
  double last_loss = 0.0;
  for (int epoch = 0; epoch < bc.epochs; ++epoch) {
    const auto perm = permutation(B, rng);
    double sum = 0.0;
    int64_t n = 0;
    for (int64_t start = 0; start < B; start += mb) {
      const int64_t len = std::min(mb, B - start);
      const auto idx = torch::from_blob(const_cast<int64_t*>(perm.data()) + start, {len}, torch::kInt64);
      const auto lp = masked_log_probs(model.logits(buf.obs, idx), b_mask.index_select(0, idx));
      const auto lp_act = lp.gather(1, b_act.index_select(0, idx).unsqueeze(1));
      torch::Tensor loss;
      if (weighted) {
        const auto w = b_w.index_select(0, idx);
        loss = -(w * lp_act.squeeze(1)).sum() / w.sum();
      } else {
        loss = -lp_act.mean();
      }
      const double lv = loss.item<double>();
      s.check_finite("bc/loss", lv);
      opt.zero_grad();
      loss.backward();
      s.group->average_gradients(params);
      opt.step();
      sum += lv;
      ++n;
    }
    last_loss = sum / std::max<int64_t>(1, n);
  }
  double acc;
  {
    torch::NoGradGuard ng;
    const auto lp = masked_log_probs(model.logits(buf.obs, row_range(0, B)), b_mask);
    acc = (lp.argmax(1) == b_act).to(torch::kFloat64).mean().item<double>();
  }
  m.set("bc/loss", last_loss);
  m.set("bc/accuracy", acc);
  m.set("bc/samples", static_cast<double>(B));
}

namespace {

class Bc final : public Algorithm {
 public:
  explicit Bc(const RunConfig& cfg) : bc_(cfg.bc), total_steps_(cfg.total_steps) {
    if (!bc_.logs.empty())
      throw ConfigError(bc_.logs_where + ": algo bc imitates the environment's expert; a warm start from logged "
                        "decisions runs before ppo or grpo (algo: ppo, bc_warmstart: {enabled: true, logs: ...})");
  }

  double base_learning_rate() const override { return bc_.learning_rate; }
  double adam_eps() const override { return 1e-8; }  // torch's default, as the warm start's optimizer
  double reference_kl_coef() const override { return 0.0; }
  void build_envs(const RunConfig& cfg) override { env_ = cfg.make_env_instance(cfg.num_envs); }
  void reset_envs(uint64_t seed) override { env_->reset(seed); }
  std::vector<VectorEnv*> persistent_envs() override { return {env_.get()}; }
  std::vector<VectorEnv*> all_envs() override { return {env_.get()}; }
  double learning_rate(const TrainerState&) const override { return bc_.learning_rate; }
  bool finished(const TrainerState& s) const override { return s.global_step >= total_steps_; }
  int64_t planned_updates(const RunConfig& cfg) const override {
    return std::max<int64_t>(1, cfg.total_steps / (int64_t(std::max(1, bc_.samples)) * cfg.world_size));
  }
  void collect_rollouts(TrainerState& s, RolloutBuffer& buf) override {
    // Every rank collects the same number of steps from its own shard.
    s.global_step += collect_expert(s, *env_, bc_.samples, bc_.expert, buf) * s.group->world_size();
  }
  void train(TrainerState& s, RolloutBuffer& buf, Metrics& m) override {
    imitate(s, bc_, buf, *s.optimizer, s.model->policy_parameters(), s.rng, /*weighted=*/false, m);
  }

 private:
  BcConfig bc_;
  int64_t total_steps_;
  std::unique_ptr<VectorEnv> env_;
};

}  // namespace

Metrics bc_warm_start(TrainerState& s) {
  const BcConfig& bc = s.cfg.bc;
  auto env = s.cfg.make_env_instance(s.cfg.num_envs);
  s.shard(*env);
  env->reset(s.shard_seed(derive_seed(s.cfg.seed, 0xBC)));
  RolloutBuffer buf;
  collect_expert(s, *env, bc.samples, bc.expert, buf);
  const auto params = s.model->policy_parameters();
  torch::optim::Adam opt(params, torch::optim::AdamOptions(bc.learning_rate));
  Metrics m;
  m.update = 0;
  m.global_step = 0;
  imitate(s, bc, buf, opt, params, s.rng, /*weighted=*/false, m);
  return m;
}

// Its settings are the warm start's (bc_warmstart, in RunConfig: PPO and GRPO warm-start with them too).
AlgorithmKind bc_algorithm() {
  AlgorithmKind k;
  k.make = [](const RunConfig& cfg) -> std::unique_ptr<Algorithm> { return std::make_unique<Bc>(cfg); };
  return k;
}

}  // namespace conductor
