// PPO (Schulman et al. 2017) with the details of CleanRL's ppo.py: GAE, clipped surrogate, clipped
// value loss, per-minibatch advantage normalization, entropy bonus, optional k3 KL to a frozen
// reference, target-KL early stop (agreed across processes), gradient-norm clipping, linear
// learning-rate annealing, minibatches and epochs over a batched rollout.
#include <cmath>

#include "core/error.h"
#include "envs/episode_loop.h"
#include "trainer/algorithm.h"
#include "trainer/distributed.h"
#include "trainer/losses.h"
#include "trainer/numerics.h"

namespace conductor {

namespace {

struct PpoConfig : AlgorithmSettings {
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

PpoConfig PpoConfig::parse(ConfigReader r) {
  PpoConfig c;
  c.num_steps = r.get_in<int>("num_steps", c.num_steps, 1, 1 << 20);
  c.learning_rate = r.get_in<double>("learning_rate", c.learning_rate, 0.0, 10.0);
  c.anneal_lr = r.get<bool>("anneal_lr", c.anneal_lr);
  c.gamma = r.get_in<double>("gamma", c.gamma, 0.0, 1.0);
  c.gae_lambda = r.get_in<double>("gae_lambda", c.gae_lambda, 0.0, 1.0);
  c.num_minibatches = r.get_in<int>("num_minibatches", c.num_minibatches, 1, 1 << 20);
  c.update_epochs = r.get_in<int>("update_epochs", c.update_epochs, 1, 10000);
  c.norm_adv = r.get<bool>("norm_adv", c.norm_adv);
  c.clip_coef = r.get_in<double>("clip_coef", c.clip_coef, 0.0, 10.0);
  c.clip_vloss = r.get<bool>("clip_vloss", c.clip_vloss);
  c.ent_coef = r.get_in<double>("ent_coef", c.ent_coef, 0.0, 100.0);
  c.vf_coef = r.get_in<double>("vf_coef", c.vf_coef, 0.0, 100.0);
  c.max_grad_norm = r.get_in<double>("max_grad_norm", c.max_grad_norm, 0.0, 1e9);
  c.target_kl = r.get_in<double>("target_kl", c.target_kl, 0.0, 1e9);
  c.adam_eps = r.get_in<double>("adam_eps", c.adam_eps, 0.0, 1.0);
  c.ref_kl_coef = r.get_in<double>("ref_kl_coef", c.ref_kl_coef, 0.0, 1e6);
  c.where = r.where("num_minibatches");
  r.finish();
  return c;
}

class Ppo final : public Algorithm {
 public:
  explicit Ppo(const RunConfig& cfg) : pc_(cfg.algorithm_settings<PpoConfig>("ppo")), num_envs_(cfg.num_envs) {
    const int64_t batch = int64_t(cfg.num_envs) * pc_.num_steps;
    if (batch % pc_.num_minibatches != 0)
      throw ConfigError(pc_.where + ": the batch (env.num_envs * ppo.num_steps = " + std::to_string(batch) +
                        ") is not divisible by ppo.num_minibatches = " + std::to_string(pc_.num_minibatches));
    // total_steps counts the steps of every process: a data-parallel update takes world_size batches.
    num_updates_ = std::max<int64_t>(1, cfg.total_steps / (batch * cfg.world_size));
  }

  double base_learning_rate() const override { return pc_.learning_rate; }
  double adam_eps() const override { return pc_.adam_eps; }
  double reference_kl_coef() const override { return pc_.ref_kl_coef; }
  void build_envs(const RunConfig& cfg) override { env_ = cfg.make_env_instance(cfg.num_envs); }
  void reset_envs(uint64_t seed) override { env_->reset(seed); }
  std::vector<VectorEnv*> persistent_envs() override { return {env_.get()}; }
  std::vector<VectorEnv*> all_envs() override { return {env_.get()}; }
  double learning_rate(const TrainerState& s) const override {
    return pc_.anneal_lr ? annealed_lr(pc_.learning_rate, s.update, num_updates_) : pc_.learning_rate;
  }
  bool finished(const TrainerState& s) const override { return s.update >= num_updates_; }
  int64_t planned_updates(const RunConfig&) const override { return num_updates_; }

  void collect_rollouts(TrainerState& s, RolloutBuffer& buf) override;
  void train(TrainerState& s, RolloutBuffer& buf, Metrics& m) override;

 private:
  // Values of rows [0, n) of an observation batch encoded on its own.
  std::vector<float> values_of(PolicyModel& model, const ObsBatch& obs) {
    EncodedObs enc;
    model.encode(obs, enc);
    torch::NoGradGuard ng;
    const auto v = model.value(enc, row_range(0, obs.n)).contiguous();
    return std::vector<float>(v.data_ptr<float>(), v.data_ptr<float>() + obs.n);
  }

  PpoConfig pc_;
  int num_envs_;
  int64_t num_updates_ = 1;
  std::unique_ptr<VectorEnv> env_;
};

void Ppo::collect_rollouts(TrainerState& s, RolloutBuffer& buf) {
  const int T = pc_.num_steps, N = num_envs_, A = s.env_spec.n_actions;
  const int64_t B = int64_t(T) * N;
  PolicyModel& model = *s.model;
  buf.clear();
  buf.n_actions = A;
  buf.obs.reserve(B);
  buf.values.assign(B, 0.f);
  buf.rewards.assign(B, 0.f);
  buf.terminated.assign(B, 0);
  buf.truncated.assign(B, 0);
  buf.final_values.assign(B, 0.f);
  int t = 0;
  run_env_loop(
      *env_,
      [&](const ObsBatch& obs, int32_t* actions) {
        const int64_t row0 = int64_t(t) * N;
        model.encode(obs, buf.obs);
        torch::NoGradGuard ng;
        const PolicyOutput out = model.forward(buf.obs, row_range(row0, row0 + N));
        const auto lp = masked_log_probs(out.logits, mask_to_tensor(obs.mask, N, A)).contiguous();
        const auto v = out.value.contiguous();
        const auto p = lp.exp().contiguous();
        const float* pp = p.data_ptr<float>();
        const float* lpp = lp.data_ptr<float>();
        const float* vp = v.data_ptr<float>();
        for (int i = 0; i < N; ++i) {
          const int a = sample_masked(pp + int64_t(i) * A, obs.mask + int64_t(i) * A, A, s.action_uniform(s.first_env + i));
          actions[i] = a;
          buf.add_step_row(obs, i, a, lpp[int64_t(i) * A + a]);
          buf.values[row0 + i] = vp[i];
        }
      },
      [&](VectorEnv& env, const int32_t*) {
        const int64_t row0 = int64_t(t) * N;
        bool any_trunc = false;
        for (int i = 0; i < N; ++i) {
          buf.rewards[row0 + i] = env.reward()[i];
          buf.terminated[row0 + i] = env.terminated()[i];
          buf.truncated[row0 + i] = env.truncated()[i] && !env.terminated()[i];
          any_trunc = any_trunc || buf.truncated[row0 + i];
        }
        if (any_trunc) {  // bootstrap truncated episodes from the value of their last observation
          const auto fv = values_of(model, env.final_observations());
          for (int i = 0; i < N; ++i)
            if (buf.truncated[row0 + i]) buf.final_values[row0 + i] = fv[i];
        }
        for (const auto& r : env.finished()) s.episodes.record(r);
        s.global_step += int64_t(N) * s.group->world_size();
        ++t;
      },
      [&] { return t >= T; }, T, "ppo rollout");
  const auto last_values = values_of(model, env_->observations());
  buf.compute_gae(T, N, last_values, pc_.gamma, pc_.gae_lambda);
}

void Ppo::train(TrainerState& s, RolloutBuffer& buf, Metrics& m) {
  PolicyModel& model = *s.model;
  const int64_t B = buf.size();
  const auto b_mask = buf.mask_tensor();
  const auto b_act = buf.action_tensor();
  const auto b_logp = buf.log_prob_tensor();
  const auto b_adv = buf.advantage_tensor();
  const auto b_ret = buf.return_tensor();
  const auto b_val = buf.value_tensor();
  const int64_t mb = B / pc_.num_minibatches;
  double sum_pg = 0, sum_vl = 0, sum_ent = 0, sum_kl = 0, sum_cf = 0, sum_gn = 0, sum_ref = 0;
  int64_t n_mb = 0;
  int epochs_done = 0;
  bool stop_early = false;
  const auto params = model.parameters();
  for (int epoch = 0; epoch < pc_.update_epochs && !stop_early; ++epoch) {
    const auto perm = permutation(B, s.rng);
    for (int64_t start = 0; start < B; start += mb) {
      const auto idx = torch::from_blob(const_cast<int64_t*>(perm.data()) + start, {mb}, torch::kInt64);
      const auto mask = b_mask.index_select(0, idx);
      const auto act = b_act.index_select(0, idx);
      const auto old_lp = b_logp.index_select(0, idx);
      const PolicyOutput out = model.forward(buf.obs, idx);
      const auto lp_all = masked_log_probs(out.logits, mask);
      const auto new_lp = lp_all.gather(1, act.unsqueeze(1)).squeeze(1);
      const auto entropy = masked_entropy(lp_all).mean();
      const double kl = approx_kl_k3(new_lp.detach(), old_lp).item<double>();
      s.check_finite("losses/approx_kl", kl);
      // SB3: stop before stepping too far; every process takes the same decision.
      if (pc_.target_kl > 0 && s.agreed_mean(kl) > 1.5 * pc_.target_kl) {
        stop_early = true;
        break;
      }
      auto mb_adv = b_adv.index_select(0, idx);
      // Over the global minibatch (every rank's rows) in data-parallel runs.
      if (pc_.norm_adv)
        mb_adv = s.group->world_size() > 1 ? normalize_advantages_across(mb_adv, *s.group) : normalize_advantages(mb_adv);
      const auto pg = clipped_surrogate_loss(new_lp, old_lp, mb_adv, pc_.clip_coef);
      const auto vl = value_loss(out.value, b_val.index_select(0, idx), b_ret.index_select(0, idx), pc_.clip_coef,
                                 pc_.clip_vloss);
      auto loss = pg - pc_.ent_coef * entropy + pc_.vf_coef * vl;
      const double ref_kl = s.add_reference_kl(loss, pc_.ref_kl_coef, new_lp, buf.obs, idx, mask, act);
      const double pg_v = pg.item<double>(), vl_v = vl.item<double>(), ent_v = entropy.item<double>();
      s.check_finite("losses/policy_loss", pg_v);
      s.check_finite("losses/value_loss", vl_v);
      s.check_finite("losses/entropy", ent_v);
      const double gn = s.optimizer_step(loss, params, pc_.max_grad_norm);
      sum_pg += pg_v;
      sum_vl += vl_v;
      sum_ent += ent_v;
      sum_kl += kl;
      sum_cf += clip_fraction(new_lp.detach(), old_lp, pc_.clip_coef).item<double>();
      sum_gn += gn;
      sum_ref += ref_kl;
      ++n_mb;
    }
    if (!stop_early) ++epochs_done;
  }
  const double k = n_mb > 0 ? 1.0 / n_mb : std::nan("");
  m.set("losses/policy_loss", sum_pg * k);
  m.set("losses/value_loss", sum_vl * k);
  m.set("losses/entropy", sum_ent * k);
  m.set("losses/approx_kl", sum_kl * k);
  m.set("losses/clipfrac", sum_cf * k);
  m.set("losses/grad_norm", sum_gn * k);
  if (pc_.ref_kl_coef > 0) m.set("losses/ref_kl", sum_ref * k);
  m.set("losses/explained_variance", explained_variance(buf.values.data(), buf.returns.data(), B));
  m.set("losses/epochs", epochs_done);
  m.set("losses/minibatches", static_cast<double>(n_mb));
}

}  // namespace

AlgorithmKind ppo_algorithm() {
  AlgorithmKind k;
  k.section = "ppo";
  k.parse = [](ConfigReader r) -> std::shared_ptr<const AlgorithmSettings> {
    return std::make_shared<PpoConfig>(PpoConfig::parse(r));
  };
  k.make = [](const RunConfig& cfg) -> std::unique_ptr<Algorithm> { return std::make_unique<Ppo>(cfg); };
  return k;
}

}  // namespace conductor
