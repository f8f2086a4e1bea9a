// GRPO (Shao et al. 2024, DeepSeekMath), the algorithm of the published Conductor: G rollouts of each
// query (G environment instances reset with the same seed, stepped in lockstep), group-normalized
// episode returns as every step's advantage, no critic, clipped surrogate, optional k3 KL to the
// frozen reference. Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-like training") is
// `scale_rewards: none` (no division by the group's std) with `loss_agg: constant`.
#include <cmath>

#include "core/error.h"
#include "envs/episode_loop.h"
#include "trainer/algorithm.h"
#include "trainer/losses.h"
#include "trainer/numerics.h"

namespace conductor {

namespace {

struct GrpoConfig : AlgorithmSettings {
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

GrpoConfig GrpoConfig::parse(ConfigReader r) {
  GrpoConfig c;
  c.group_size = r.get_in<int>("group_size", c.group_size, 2, 1 << 16);
  c.learning_rate = r.get_in<double>("learning_rate", c.learning_rate, 0.0, 10.0);
  c.anneal_lr = r.get<bool>("anneal_lr", c.anneal_lr);
  c.update_epochs = r.get_in<int>("update_epochs", c.update_epochs, 1, 10000);
  c.num_minibatches = r.get_in<int>("num_minibatches", c.num_minibatches, 1, 1 << 20);
  c.clip_coef = r.get_in<double>("clip_coef", c.clip_coef, 0.0, 10.0);
  c.ent_coef = r.get_in<double>("ent_coef", c.ent_coef, 0.0, 100.0);
  c.kl_coef = r.get_in<double>("kl_coef", c.kl_coef, 0.0, 1e6);
  c.max_grad_norm = r.get_in<double>("max_grad_norm", c.max_grad_norm, 0.0, 1e9);
  c.adam_eps = r.get_in<double>("adam_eps", c.adam_eps, 0.0, 1.0);
  c.scale_rewards = r.get_choice("scale_rewards", c.scale_rewards, {"group", "batch", "none"});
  c.loss_agg = r.get_choice("loss_agg", c.loss_agg, {"step", "episode", "constant"});
  r.finish();
  return c;
}

class Grpo final : public Algorithm {
 public:
  explicit Grpo(const RunConfig& cfg) : gc_(cfg.algorithm_settings<GrpoConfig>("grpo")), num_envs_(cfg.num_envs), total_steps_(cfg.total_steps) {}

  double base_learning_rate() const override { return gc_.learning_rate; }
  double adam_eps() const override { return gc_.adam_eps; }
  double reference_kl_coef() const override { return gc_.kl_coef; }
  void build_envs(const RunConfig& cfg) override {
    for (int g = 0; g < gc_.group_size; ++g) envs_.push_back(cfg.make_env_instance(cfg.num_envs));
  }
  // Every update resets the group's environments with its own seed: nothing to start or keep.
  void reset_envs(uint64_t) override {}
  std::vector<VectorEnv*> persistent_envs() override { return {}; }
  std::vector<VectorEnv*> all_envs() override {
    std::vector<VectorEnv*> v;
    for (auto& e : envs_) v.push_back(e.get());
    return v;
  }
  double learning_rate(const TrainerState& s) const override {
    if (!gc_.anneal_lr) return gc_.learning_rate;
    const double frac = 1.0 - static_cast<double>(s.global_step) / static_cast<double>(total_steps_);
    return gc_.learning_rate * std::max(0.0, frac);
  }
  bool finished(const TrainerState& s) const override { return s.global_step >= total_steps_; }
  int64_t planned_updates(const RunConfig& cfg) const override {
    // Episodes per update are num_envs * group_size; their steps vary.
    return std::max<int64_t>(1, cfg.total_steps / (int64_t(cfg.num_envs) * gc_.group_size * cfg.world_size));
  }

  void collect_rollouts(TrainerState& s, RolloutBuffer& buf) override;
  void train(TrainerState& s, RolloutBuffer& buf, Metrics& m) override;

 private:
  GrpoConfig gc_;
  int num_envs_;
  int64_t total_steps_;
  std::vector<std::unique_ptr<VectorEnv>> envs_;
};

void Grpo::collect_rollouts(TrainerState& s, RolloutBuffer& buf) {
  const int Q = num_envs_, G = gc_.group_size, A = s.env_spec.n_actions;
  PolicyModel& model = *s.model;
  const uint64_t seed_u = derive_seed(s.cfg.seed, 0x6790, static_cast<uint64_t>(s.update));
  for (auto& e : envs_) e->reset(s.shard_seed(seed_u));
  const int64_t steps_before = s.global_step;
  buf.clear();
  buf.n_actions = A;
  buf.episode_returns.assign(int64_t(Q) * G, 0.f);
  std::vector<uint8_t> active(int64_t(Q) * G, 1);
  int64_t n_active = int64_t(Q) * G;
  const int max_len = s.env_spec.max_episode_steps > 0 ? s.env_spec.max_episode_steps : 100000;
  EncodedObs step_obs;
  run_env_loop(
      all_envs(),
      [&](int g, const ObsBatch& obs, int32_t* actions) {
        step_obs.clear();
        model.encode(obs, step_obs);
        torch::NoGradGuard ng;
        const auto lp = masked_log_probs(model.logits(step_obs, row_range(0, Q)), mask_to_tensor(obs.mask, Q, A))
                            .contiguous();
        const auto p = lp.exp().contiguous();
        for (int q = 0; q < Q; ++q) {
          const int a = sample_masked(p.data_ptr<float>() + int64_t(q) * A, obs.mask + int64_t(q) * A, A,
                                      s.action_uniform((s.first_env + q) * G + g));
          actions[q] = a;
          // Members whose episode ended keep stepping (auto-reset) but add nothing to the batch.
          if (!active[int64_t(q) * G + g]) continue;
          buf.obs.append_row(step_obs, q);
          buf.add_step_row(obs, q, a, lp.data_ptr<float>()[int64_t(q) * A + a]);
          buf.owner.push_back(int64_t(q) * G + g);
        }
      },
      [&](int g, VectorEnv& env, const int32_t*) {
        std::vector<uint8_t> ended_now(Q, 0);
        for (int q = 0; q < Q; ++q) {
          const int64_t k = int64_t(q) * G + g;
          if (!active[k]) continue;
          ++s.global_step;
          buf.episode_returns[k] += env.reward()[q];
          if (env.terminated()[q] || env.truncated()[q]) {
            active[k] = 0;
            ended_now[q] = 1;
            --n_active;
          }
        }
        for (const auto& r : env.finished())
          if (ended_now[r.env_index]) s.episodes.record(r);
      },
      [&] { return n_active == 0; }, int64_t(max_len) + 1,
      "grpo: GRPO needs episodic environments with a finite max_episode_steps; the group's episodes");
  if (s.group->world_size() > 1) {  // global_step counts every rank's steps (finished() must agree)
    std::vector<double> steps{static_cast<double>(s.global_step - steps_before)};
    s.group->sum(steps);
    s.global_step = steps_before + static_cast<int64_t>(std::llround(steps[0]));
  }
  const auto adv_group = scaled_group_advantages(buf.episode_returns, Q, G, gc_.scale_rewards);
  // The loss aggregation folds into per-row weights on the advantage (the clipped surrogate is
  // positively homogeneous in it), normalized so the plain mean over rows applies: step -> 1,
  // episode -> rows / (episodes x its length), constant -> rows / (episodes x max_episode_steps).
  const int64_t B = buf.size(), episodes = int64_t(Q) * G;
  std::vector<int64_t> length(static_cast<std::size_t>(episodes), 0);
  for (int64_t i = 0; i < B; ++i) ++length[static_cast<std::size_t>(buf.owner[i])];
  buf.advantages.resize(B);
  for (int64_t i = 0; i < B; ++i) {
    const auto e = static_cast<std::size_t>(buf.owner[i]);
    double w = 1.0;
    if (gc_.loss_agg == "episode") w = double(B) / (double(episodes) * double(length[e]));
    else if (gc_.loss_agg == "constant") w = double(B) / (double(episodes) * double(max_len));
    buf.advantages[i] = static_cast<float>(adv_group[e] * w);
  }
}

void Grpo::train(TrainerState& s, RolloutBuffer& buf, Metrics& m) {
  PolicyModel& model = *s.model;
  const int Q = num_envs_, G = gc_.group_size;
  const int64_t B = buf.size();
  const auto b_mask = buf.mask_tensor();
  const auto b_act = buf.action_tensor();
  const auto b_logp = buf.log_prob_tensor();
  const auto b_adv = buf.advantage_tensor();
  const int64_t mb = std::max<int64_t>(1, B / gc_.num_minibatches);
  double sum_pg = 0, sum_ent = 0, sum_kl = 0, sum_ref = 0, sum_gn = 0;
  int64_t n_mb = 0;
  const auto params = model.parameters();
  for (int epoch = 0; epoch < gc_.update_epochs; ++epoch) {
    const auto perm = permutation(B, s.rng);
    for (int64_t start = 0; start < B; start += mb) {
      const int64_t len = std::min(mb, B - start);
      const auto idx = torch::from_blob(const_cast<int64_t*>(perm.data()) + start, {len}, torch::kInt64);
      const auto mask = b_mask.index_select(0, idx);
      const auto act = b_act.index_select(0, idx);
      const auto old_lp = b_logp.index_select(0, idx);
      const auto lp_all = masked_log_probs(model.logits(buf.obs, idx), mask);
      const auto new_lp = lp_all.gather(1, act.unsqueeze(1)).squeeze(1);
      const auto entropy = masked_entropy(lp_all).mean();
      const auto pg = clipped_surrogate_loss(new_lp, old_lp, b_adv.index_select(0, idx), gc_.clip_coef);
      auto loss = pg - gc_.ent_coef * entropy;
      const double ref_kl = s.add_reference_kl(loss, gc_.kl_coef, new_lp, buf.obs, idx, mask, act);
      const double pg_v = pg.item<double>(), ent_v = entropy.item<double>();
      s.check_finite("losses/policy_loss", pg_v);
      s.check_finite("losses/entropy", ent_v);
      const double gn = s.optimizer_step(loss, params, gc_.max_grad_norm);
      sum_pg += pg_v;
      sum_ent += ent_v;
      sum_kl += approx_kl_k3(new_lp.detach(), old_lp).item<double>();
      sum_ref += ref_kl;
      sum_gn += gn;
      ++n_mb;
    }
  }
  double sum_sd = 0.0;
  const auto& returns = buf.episode_returns;
  for (int q = 0; q < Q; ++q) {
    double mean = 0, var = 0;
    for (int g = 0; g < G; ++g) mean += returns[int64_t(q) * G + g];
    mean /= G;
    for (int g = 0; g < G; ++g) var += std::pow(returns[int64_t(q) * G + g] - mean, 2);
    sum_sd += std::sqrt(var / G);
  }
  m.set("charts/group_return_std", sum_sd / Q);
  const double k = n_mb > 0 ? 1.0 / n_mb : std::nan("");
  m.set("losses/policy_loss", sum_pg * k);
  m.set("losses/entropy", sum_ent * k);
  m.set("losses/approx_kl", sum_kl * k);
  m.set("losses/grad_norm", sum_gn * k);
  if (gc_.kl_coef > 0) m.set("losses/ref_kl", sum_ref * k);
  m.set("losses/minibatches", static_cast<double>(n_mb));
}

}  // namespace

AlgorithmKind grpo_algorithm() {
  AlgorithmKind k;
  k.section = "grpo";
  k.parse = [](ConfigReader r) -> std::shared_ptr<const AlgorithmSettings> {
    return std::make_shared<GrpoConfig>(GrpoConfig::parse(r));
  };
  k.make = [](const RunConfig& cfg) -> std::unique_ptr<Algorithm> { return std::make_unique<Grpo>(cfg); };
  return k;
}

}  // namespace conductor
