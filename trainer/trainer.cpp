// The training loop: PPO and GRPO updates, behaviour-cloning warm start, checkpoints, resume.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <deque>
#include <filesystem>
#include <iostream>
#include <limits>
#include <sstream>

#include "core/atomic_file.h"
#include "core/json_util.h"
#include "core/random.h"
#include "policies/actor_critic.h"
#include "trainer/losses.h"
#include "trainer/numerics.h"
#include "trainer/run_config.h"
#include "trainer/train.h"

namespace conductor {

namespace fs = std::filesystem;

namespace {

constexpr int kRunFormatVersion = 1;
constexpr const char* kConductorVersion = "0.1.0";
constexpr size_t kReturnWindow = 100;  // episodes in charts/return_ma100

// ---- signals: SIGINT/SIGTERM ask the loop to checkpoint and stop at the next update boundary ----
std::atomic<int> g_stop_signal{0};
extern "C" void on_stop_signal(int sig) { g_stop_signal.store(sig); }

class SignalScope {
 public:
  SignalScope() {
    g_stop_signal.store(0);
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~SignalScope() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

json rng_to_json(const Rng& rng) {
  const Rng::State st = rng.state();
  return json{{"s", {st.s[0], st.s[1], st.s[2], st.s[3]}}, {"has_spare", st.has_spare}, {"spare", st.spare}};
}
void rng_from_json(Rng& rng, const json& j) {
  Rng::State st;
  for (int i = 0; i < 4; ++i) st.s[i] = j.at("s").at(i).get<uint64_t>();
  st.has_spare = j.at("has_spare").get<bool>();
  st.spare = j.at("spare").get<double>();
  rng.set_state(st);
}

torch::Tensor obs_tensor(const float* data, int64_t n, int64_t d) {
  return torch::from_blob(const_cast<float*>(data), {n, d}, torch::kFloat32).clone();
}
torch::Tensor mask_tensor(const uint8_t* data, int64_t n, int64_t a) {
  return torch::from_blob(const_cast<uint8_t*>(data), {n, a}, torch::kUInt8).to(torch::kBool);
}

void set_lr(torch::optim::Adam& opt, double lr) {
  for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamOptions&>(g.options()).lr(lr);
}

// A random permutation of 0..n-1 from the trainer's own RNG (Fisher-Yates), so minibatch order is
// part of the checkpointed state and identical on every platform.
std::vector<int64_t> permutation(int64_t n, Rng& rng) {
  std::vector<int64_t> p(n);
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[static_cast<int64_t>(rng.below(i + 1))]);
  return p;
}

// Per-update statistics of finished episodes.
struct EpisodeStats {
  std::vector<std::string> extra_names;
  double sum_return = 0.0, sum_length = 0.0;
  int64_t count = 0;
  std::vector<double> extra_sums;
  explicit EpisodeStats(const std::vector<std::string>& names)
      : extra_names(names), extra_sums(names.size(), 0.0) {}
  void add(const EpisodeRecord& r) {
    sum_return += r.episode_return;
    sum_length += r.length;
    ++count;
    for (size_t k = 0; k < extra_sums.size() && k < r.extras.size(); ++k) extra_sums[k] += r.extras[k];
  }
  void write(Metrics& m) const {
    m.set("charts/episodes", static_cast<double>(count));
    if (count == 0) return;
    m.set("charts/episodic_return", sum_return / count);
    m.set("charts/episodic_length", sum_length / count);
    for (size_t k = 0; k < extra_names.size(); ++k) m.set("charts/" + extra_names[k], extra_sums[k] / count);
  }
};

// The policy's outputs on the rows idx of a rollout batch (the rows' obs, masks, actions and
// behaviour log-probs), with gradients.
struct Minibatch {
  torch::Tensor obs, mask, act, old_lp, new_lp, entropy;
  Minibatch(ActorCritic& model, const torch::Tensor& idx, const torch::Tensor& b_obs, const torch::Tensor& b_mask,
            const torch::Tensor& b_act, const torch::Tensor& b_logp)
      : obs(b_obs.index_select(0, idx)),
        mask(b_mask.index_select(0, idx)),
        act(b_act.index_select(0, idx)),
        old_lp(b_logp.index_select(0, idx)) {
    const auto lp_all = masked_log_probs(model->logits(obs), mask);
    new_lp = lp_all.gather(1, act.unsqueeze(1)).squeeze(1);
    entropy = masked_entropy(lp_all).mean();
  }
};

class Trainer {
 public:
  Trainer(RunConfig cfg, const TrainOptions& opt, std::string run_dir, std::string fingerprint,
          std::string resolved_yaml)
      : cfg_(std::move(cfg)), opt_(opt), run_dir_(std::move(run_dir)), fingerprint_(std::move(fingerprint)),
        resolved_yaml_(std::move(resolved_yaml)) {}

  TrainResult run(bool resume);

 private:
  void build();
  Metrics ppo_update();
  Metrics grpo_update();
  Metrics bc_warmstart();
  Metrics final_evaluation();
  void check_finite(const char* name, double v) const;
  std::string save_checkpoint();
  void load_checkpoint(const std::string& ckpt);
  void record_episode(const EpisodeRecord& r, EpisodeStats& stats);
  double current_lr(double base, bool anneal) const;
  double add_ref_kl(torch::Tensor& loss, const Minibatch& b);
  double optimizer_step(torch::Tensor loss, const std::vector<torch::Tensor>& ps, double max_grad_norm);
  Metrics update_metrics(const EpisodeStats& stats, double lr) const;
  std::vector<torch::Tensor> params() { return model_->parameters(); }

  RunConfig cfg_;
  TrainOptions opt_;
  std::string run_dir_, fingerprint_, resolved_yaml_;
  EnvSpec spec_;
  std::unique_ptr<VectorEnv> env_;                 // PPO
  std::vector<std::unique_ptr<VectorEnv>> genvs_;  // GRPO: one instance per group member
  ActorCritic model_{nullptr};
  ActorCritic ref_{nullptr};
  std::unique_ptr<torch::optim::Adam> optimizer_;
  std::unique_ptr<JsonlSink> jsonl_;
  std::vector<std::unique_ptr<MetricsSink>> sinks_;
  Rng rng_;
  int64_t update_ = 0, global_step_ = 0, episodes_ = 0;
  std::deque<double> recent_returns_;
  bool resume_exact_ = true;
  double ref_coef_ = 0.0;
};

void Trainer::check_finite(const char* name, double v) const {
  if (!std::isfinite(v))
    throw TrainingDiverged("update " + std::to_string(update_) + ": metric '" + name + "' is " +
                           (std::isnan(v) ? "NaN" : "infinite") +
                           "; training stopped without writing a checkpoint for this update (the last "
                           "complete checkpoint in " + run_dir_ + "/checkpoints is intact)");
}

double Trainer::current_lr(double base, bool anneal) const {
  if (!anneal) return base;
  if (cfg_.algo == "ppo") return annealed_lr(base, update_, cfg_.num_updates());
  const double frac = 1.0 - static_cast<double>(global_step_) / static_cast<double>(cfg_.total_steps);
  return base * std::max(0.0, frac);
}

void Trainer::record_episode(const EpisodeRecord& r, EpisodeStats& stats) {
  stats.add(r);
  ++episodes_;
  recent_returns_.push_back(r.episode_return);
  while (recent_returns_.size() > kReturnWindow) recent_returns_.pop_front();
}

// With a reference policy: adds ref_coef * k3 KL(new || reference) on the minibatch to the loss and
// returns that KL; without one, 0.
double Trainer::add_ref_kl(torch::Tensor& loss, const Minibatch& b) {
  if (ref_coef_ <= 0) return 0.0;
  torch::Tensor ref_lp;
  {
    torch::NoGradGuard ng;
    ref_lp = masked_log_probs(ref_->logits(b.obs), b.mask).gather(1, b.act.unsqueeze(1)).squeeze(1);
  }
  const auto rk = kl_to_reference_k3(b.new_lp, ref_lp);
  loss = loss + ref_coef_ * rk;
  return rk.item<double>();
}

// One optimizer step on the loss (checked finite), gradients clipped to max_grad_norm (0: no clip);
// returns the gradient norm before clipping.
double Trainer::optimizer_step(torch::Tensor loss, const std::vector<torch::Tensor>& ps, double max_grad_norm) {
  if (update_ == opt_.poison_loss_at_update) loss = loss * std::numeric_limits<float>::quiet_NaN();
  check_finite("losses/loss", loss.item<double>());
  optimizer_->zero_grad();
  loss.backward();
  const double gn = torch::nn::utils::clip_grad_norm_(
      ps, max_grad_norm > 0 ? max_grad_norm : std::numeric_limits<double>::infinity());
  check_finite("losses/grad_norm", gn);
  optimizer_->step();
  return gn;
}

// The metrics every update reports first: counters, episode statistics, return_ma100, learning rate.
Metrics Trainer::update_metrics(const EpisodeStats& stats, double lr) const {
  Metrics m;
  m.update = update_;
  m.global_step = global_step_;
  stats.write(m);
  if (!recent_returns_.empty()) {
    double s = 0;
    for (double r : recent_returns_) s += r;
    m.set("charts/return_ma100", s / recent_returns_.size());
  }
  m.set("charts/learning_rate", lr);
  return m;
}

void Trainer::build() {
  if (cfg_.algo == "ppo") {
    env_ = cfg_.make_env_instance(cfg_.num_envs);
    spec_ = env_->spec();
  } else {
    for (int g = 0; g < cfg_.grpo.group_size; ++g) genvs_.push_back(cfg_.make_env_instance(cfg_.num_envs));
    spec_ = genvs_[0]->spec();
  }
  torch::set_num_threads(cfg_.threads);
  torch::manual_seed(derive_seed(cfg_.seed, 0x1A17));  // weight initialization only
  model_ = ActorCritic(MlpSpec::from(cfg_.policy, spec_.obs_dim, spec_.n_actions));
  const double lr = cfg_.algo == "ppo" ? cfg_.ppo.learning_rate : cfg_.grpo.learning_rate;
  const double eps = cfg_.algo == "ppo" ? cfg_.ppo.adam_eps : cfg_.grpo.adam_eps;
  optimizer_ = std::make_unique<torch::optim::Adam>(model_->parameters(), torch::optim::AdamOptions(lr).eps(eps));
  ref_coef_ = cfg_.algo == "ppo" ? cfg_.ppo.ref_kl_coef : cfg_.grpo.kl_coef;
  rng_.reseed(derive_seed(cfg_.seed, 0x7A1));
}

// ---------------------------------------------------------------------------------------------
// PPO
// ---------------------------------------------------------------------------------------------
Metrics Trainer::ppo_update() {
  const PpoConfig& pc = cfg_.ppo;
  const int T = pc.num_steps, N = cfg_.num_envs, D = spec_.obs_dim, A = spec_.n_actions;
  const int64_t B = int64_t(T) * N;
  std::vector<float> obs(B * D), rewards(B), values(B), logps(B), final_values(B, 0.f);
  std::vector<uint8_t> masks(B * A), term(B), trunc(B);
  std::vector<int64_t> acts(B);
  std::vector<int32_t> step_actions(N);
  std::vector<float> probs;
  EpisodeStats stats(spec_.extra_names);

  const double lr = current_lr(pc.learning_rate, pc.anneal_lr);
  set_lr(*optimizer_, lr);

  // ---- rollout ----
  for (int t = 0; t < T; ++t) {
    const int64_t row0 = int64_t(t) * N;
    std::copy(env_->obs(), env_->obs() + int64_t(N) * D, obs.begin() + row0 * D);
    std::copy(env_->action_mask(), env_->action_mask() + int64_t(N) * A, masks.begin() + row0 * A);
    {
      torch::NoGradGuard ng;
      const auto o = torch::from_blob(obs.data() + row0 * D, {N, D}, torch::kFloat32);
      const auto m = mask_tensor(masks.data() + row0 * A, N, A);
      const auto lp = masked_log_probs(model_->logits(o), m).contiguous();
      const auto v = model_->value(o).contiguous();
      const auto p = lp.exp().contiguous();
      const float* pp = p.data_ptr<float>();
      const float* lpp = lp.data_ptr<float>();
      const float* vp = v.data_ptr<float>();
      for (int i = 0; i < N; ++i) {
        const int a = sample_masked(pp + int64_t(i) * A, masks.data() + (row0 + i) * A, A, rng_.uniform());
        step_actions[i] = a;
        acts[row0 + i] = a;
        logps[row0 + i] = lpp[int64_t(i) * A + a];
        values[row0 + i] = vp[i];
      }
    }
    env_->step(step_actions.data());
    bool any_trunc = false;
    for (int i = 0; i < N; ++i) {
      rewards[row0 + i] = env_->reward()[i];
      term[row0 + i] = env_->terminated()[i];
      trunc[row0 + i] = env_->truncated()[i] && !env_->terminated()[i];
      any_trunc = any_trunc || trunc[row0 + i];
    }
    if (any_trunc) {  // bootstrap truncated episodes from the value of their last observation
      torch::NoGradGuard ng;
      const auto fv = model_->value(obs_tensor(env_->final_obs(), N, D)).contiguous();
      for (int i = 0; i < N; ++i)
        if (trunc[row0 + i]) final_values[row0 + i] = fv.data_ptr<float>()[i];
    }
    for (const auto& r : env_->finished()) record_episode(r, stats);
    global_step_ += N;
  }
  std::vector<float> last_values(N);
  {
    torch::NoGradGuard ng;
    const auto lv = model_->value(obs_tensor(env_->obs(), N, D)).contiguous();
    std::copy(lv.data_ptr<float>(), lv.data_ptr<float>() + N, last_values.begin());
  }
  std::vector<float> adv(B), ret(B);
  GaeInput gi;
  gi.T = T;
  gi.N = N;
  gi.rewards = rewards.data();
  gi.values = values.data();
  gi.terminated = term.data();
  gi.truncated = trunc.data();
  gi.final_values = final_values.data();
  gi.last_values = last_values.data();
  gi.gamma = pc.gamma;
  gi.lambda = pc.gae_lambda;
  compute_gae(gi, adv.data(), ret.data());

  // ---- optimization ----
  const auto b_obs = torch::from_blob(obs.data(), {B, D}, torch::kFloat32);
  const auto b_mask = mask_tensor(masks.data(), B, A);
  const auto b_act = torch::from_blob(acts.data(), {B}, torch::kInt64);
  const auto b_logp = torch::from_blob(logps.data(), {B}, torch::kFloat32);
  const auto b_adv = torch::from_blob(adv.data(), {B}, torch::kFloat32);
  const auto b_ret = torch::from_blob(ret.data(), {B}, torch::kFloat32);
  const auto b_val = torch::from_blob(values.data(), {B}, torch::kFloat32);
  const int64_t mb = B / pc.num_minibatches;
  double sum_pg = 0, sum_vl = 0, sum_ent = 0, sum_kl = 0, sum_cf = 0, sum_gn = 0, sum_ref = 0;
  int64_t n_mb = 0;
  int epochs_done = 0;
  bool stop_early = false;
  const auto ps = params();
  for (int epoch = 0; epoch < pc.update_epochs && !stop_early; ++epoch) {
    const auto perm = permutation(B, rng_);
    for (int64_t start = 0; start < B; start += mb) {
      const auto idx = torch::from_blob(const_cast<int64_t*>(perm.data()) + start, {mb}, torch::kInt64);
      const Minibatch b(model_, idx, b_obs, b_mask, b_act, b_logp);
      const auto new_v = model_->value(b.obs);
      const double kl = approx_kl_k3(b.new_lp.detach(), b.old_lp).item<double>();
      check_finite("losses/approx_kl", kl);
      if (pc.target_kl > 0 && kl > 1.5 * pc.target_kl) {  // SB3: stop before stepping too far
        stop_early = true;
        break;
      }
      auto mb_adv = b_adv.index_select(0, idx);
      if (pc.norm_adv) mb_adv = normalize_advantages(mb_adv);
      const auto pg = clipped_surrogate_loss(b.new_lp, b.old_lp, mb_adv, pc.clip_coef);
      const auto vl = value_loss(new_v, b_val.index_select(0, idx), b_ret.index_select(0, idx), pc.clip_coef,
                                 pc.clip_vloss);
      auto loss = pg - pc.ent_coef * b.entropy + pc.vf_coef * vl;
      const double ref_kl = add_ref_kl(loss, b);
      const double pg_v = pg.item<double>(), vl_v = vl.item<double>(), ent_v = b.entropy.item<double>();
      check_finite("losses/policy_loss", pg_v);
      check_finite("losses/value_loss", vl_v);
      check_finite("losses/entropy", ent_v);
      const double gn = optimizer_step(loss, ps, pc.max_grad_norm);
      sum_pg += pg_v;
      sum_vl += vl_v;
      sum_ent += ent_v;
      sum_kl += kl;
      sum_cf += clip_fraction(b.new_lp.detach(), b.old_lp, pc.clip_coef).item<double>();
      sum_gn += gn;
      sum_ref += ref_kl;
      ++n_mb;
    }
    if (!stop_early) ++epochs_done;
  }

  Metrics m = update_metrics(stats, lr);
  const double k = n_mb > 0 ? 1.0 / n_mb : std::nan("");
  m.set("losses/policy_loss", sum_pg * k);
  m.set("losses/value_loss", sum_vl * k);
  m.set("losses/entropy", sum_ent * k);
  m.set("losses/approx_kl", sum_kl * k);
  m.set("losses/clipfrac", sum_cf * k);
  m.set("losses/grad_norm", sum_gn * k);
  if (ref_coef_ > 0) m.set("losses/ref_kl", sum_ref * k);
  m.set("losses/explained_variance", explained_variance(values.data(), ret.data(), B));
  m.set("losses/epochs", epochs_done);
  m.set("losses/minibatches", static_cast<double>(n_mb));
  return m;
}

// ---------------------------------------------------------------------------------------------
// GRPO: G rollouts of each query (G env instances reset with the same seed), group-normalized
// returns as advantages, no critic, optional k3 KL to the frozen reference.
// ---------------------------------------------------------------------------------------------
Metrics Trainer::grpo_update() {
  const GrpoConfig& gc = cfg_.grpo;
  const int Q = cfg_.num_envs, G = gc.group_size, D = spec_.obs_dim, A = spec_.n_actions;
  const double lr = current_lr(gc.learning_rate, gc.anneal_lr);
  set_lr(*optimizer_, lr);
  const uint64_t seed_u = derive_seed(cfg_.seed, 0x6790, static_cast<uint64_t>(update_));
  for (auto& e : genvs_) e->reset(seed_u);

  std::vector<float> obs, logps;
  std::vector<uint8_t> masks;
  std::vector<int64_t> acts, owner;  // owner = q * G + g
  std::vector<float> returns(int64_t(Q) * G, 0.f);
  std::vector<uint8_t> active(int64_t(Q) * G, 1);
  EpisodeStats stats(spec_.extra_names);
  const int max_len = spec_.max_episode_steps > 0 ? spec_.max_episode_steps : 100000;
  std::vector<int32_t> step_actions(Q);
  int64_t n_active = int64_t(Q) * G;
  for (int t = 0; t <= max_len && n_active > 0; ++t) {
    for (int g = 0; g < G; ++g) {
      VectorEnv& env = *genvs_[g];
      {
        torch::NoGradGuard ng;
        const auto o = torch::from_blob(const_cast<float*>(env.obs()), {Q, D}, torch::kFloat32);
        const auto lp = masked_log_probs(model_->logits(o), mask_tensor(env.action_mask(), Q, A)).contiguous();
        const auto p = lp.exp().contiguous();
        for (int q = 0; q < Q; ++q) {
          const int a = sample_masked(p.data_ptr<float>() + int64_t(q) * A, env.action_mask() + int64_t(q) * A, A,
                                      rng_.uniform());
          step_actions[q] = a;
          if (!active[int64_t(q) * G + g]) continue;
          obs.insert(obs.end(), env.obs() + int64_t(q) * D, env.obs() + int64_t(q + 1) * D);
          masks.insert(masks.end(), env.action_mask() + int64_t(q) * A, env.action_mask() + int64_t(q + 1) * A);
          acts.push_back(a);
          logps.push_back(lp.data_ptr<float>()[int64_t(q) * A + a]);
          owner.push_back(int64_t(q) * G + g);
        }
      }
      env.step(step_actions.data());
      std::vector<uint8_t> ended_now(Q, 0);
      for (int q = 0; q < Q; ++q) {
        const int64_t k = int64_t(q) * G + g;
        if (!active[k]) continue;
        ++global_step_;
        returns[k] += env.reward()[q];
        if (env.terminated()[q] || env.truncated()[q]) {
          active[k] = 0;
          ended_now[q] = 1;
          --n_active;
        }
      }
      for (const auto& r : env.finished())
        if (ended_now[r.env_index]) record_episode(r, stats);
    }
  }
  if (n_active > 0)
    fail("grpo: ", n_active, " episodes did not end within ", max_len,
         " steps; GRPO needs episodic environments with a finite max_episode_steps");

  const auto adv_group = group_advantages(returns, Q, G);
  const int64_t B = static_cast<int64_t>(acts.size());
  std::vector<float> adv(B);
  for (int64_t i = 0; i < B; ++i) adv[i] = adv_group[owner[i]];

  const auto b_obs = torch::from_blob(obs.data(), {B, D}, torch::kFloat32);
  const auto b_mask = mask_tensor(masks.data(), B, A);
  const auto b_act = torch::from_blob(acts.data(), {B}, torch::kInt64);
  const auto b_logp = torch::from_blob(logps.data(), {B}, torch::kFloat32);
  const auto b_adv = torch::from_blob(adv.data(), {B}, torch::kFloat32);
  const int64_t mb = std::max<int64_t>(1, B / gc.num_minibatches);
  double sum_pg = 0, sum_ent = 0, sum_kl = 0, sum_ref = 0, sum_gn = 0;
  int64_t n_mb = 0;
  const auto ps = params();
  for (int epoch = 0; epoch < gc.update_epochs; ++epoch) {
    const auto perm = permutation(B, rng_);
    for (int64_t start = 0; start < B; start += mb) {
      const int64_t len = std::min(mb, B - start);
      const auto idx = torch::from_blob(const_cast<int64_t*>(perm.data()) + start, {len}, torch::kInt64);
      const Minibatch b(model_, idx, b_obs, b_mask, b_act, b_logp);
      const auto pg = clipped_surrogate_loss(b.new_lp, b.old_lp, b_adv.index_select(0, idx), gc.clip_coef);
      auto loss = pg - gc.ent_coef * b.entropy;
      const double ref_kl = add_ref_kl(loss, b);
      const double pg_v = pg.item<double>(), ent_v = b.entropy.item<double>();
      check_finite("losses/policy_loss", pg_v);
      check_finite("losses/entropy", ent_v);
      const double gn = optimizer_step(loss, ps, gc.max_grad_norm);
      sum_pg += pg_v;
      sum_ent += ent_v;
      sum_kl += approx_kl_k3(b.new_lp.detach(), b.old_lp).item<double>();
      sum_ref += ref_kl;
      sum_gn += gn;
      ++n_mb;
    }
  }
  double sum_sd = 0.0;
  for (int q = 0; q < Q; ++q) {
    double mean = 0, var = 0;
    for (int g = 0; g < G; ++g) mean += returns[int64_t(q) * G + g];
    mean /= G;
    for (int g = 0; g < G; ++g) var += std::pow(returns[int64_t(q) * G + g] - mean, 2);
    sum_sd += std::sqrt(var / G);
  }
  Metrics m = update_metrics(stats, lr);
  m.set("charts/group_return_std", sum_sd / Q);
  const double k = n_mb > 0 ? 1.0 / n_mb : std::nan("");
  m.set("losses/policy_loss", sum_pg * k);
  m.set("losses/entropy", sum_ent * k);
  m.set("losses/approx_kl", sum_kl * k);
  m.set("losses/grad_norm", sum_gn * k);
  if (ref_coef_ > 0) m.set("losses/ref_kl", sum_ref * k);
  m.set("losses/minibatches", static_cast<double>(n_mb));
  return m;
}

// ---------------------------------------------------------------------------------------------
// Behaviour cloning from the environment's best fixed strategy (VectorEnv::expert_actions).
// ---------------------------------------------------------------------------------------------
Metrics Trainer::bc_warmstart() {
  const BcConfig& bc = cfg_.bc;
  auto env = cfg_.make_env_instance(cfg_.num_envs);
  const int N = cfg_.num_envs, D = spec_.obs_dim, A = spec_.n_actions;
  env->reset(derive_seed(cfg_.seed, 0xBC));
  std::vector<float> obs;
  std::vector<uint8_t> masks;
  std::vector<int64_t> acts;
  std::vector<int32_t> expert(N);
  while (static_cast<int>(acts.size()) < bc.samples) {
    if (!env->expert_actions(expert.data()))
      fail("bc_warmstart: environment '", spec_.id,
           "' provides no expert strategy to imitate; set bc_warmstart.enabled: false");
    for (int i = 0; i < N && static_cast<int>(acts.size()) < bc.samples; ++i) {
      if (expert[i] < 0 || expert[i] >= A || !env->action_mask()[int64_t(i) * A + expert[i]])
        throw InternalError("environment '" + spec_.id + "' returned expert action " + std::to_string(expert[i]) +
                            " that its own mask forbids (sub-environment " + std::to_string(i) + ")");
      obs.insert(obs.end(), env->obs() + int64_t(i) * D, env->obs() + int64_t(i + 1) * D);
      masks.insert(masks.end(), env->action_mask() + int64_t(i) * A, env->action_mask() + int64_t(i + 1) * A);
      acts.push_back(expert[i]);
    }
    env->step(expert.data());
  }
  const int64_t B = static_cast<int64_t>(acts.size());
  const auto b_obs = torch::from_blob(obs.data(), {B, D}, torch::kFloat32);
  const auto b_mask = mask_tensor(masks.data(), B, A);
  const auto b_act = torch::from_blob(acts.data(), {B}, torch::kInt64);
  torch::optim::Adam opt(model_->actor->parameters(), torch::optim::AdamOptions(bc.learning_rate));
  const int64_t mb = std::min<int64_t>(bc.minibatch_size, B);
  double last_loss = 0.0;
  for (int epoch = 0; epoch < bc.epochs; ++epoch) {
    const auto perm = permutation(B, rng_);
    double sum = 0.0;
    int64_t n = 0;
    for (int64_t start = 0; start < B; start += mb) {
      const int64_t len = std::min(mb, B - start);
      const auto idx = torch::from_blob(const_cast<int64_t*>(perm.data()) + start, {len}, torch::kInt64);
      const auto lp = masked_log_probs(model_->logits(b_obs.index_select(0, idx)), b_mask.index_select(0, idx));
      const auto loss = -lp.gather(1, b_act.index_select(0, idx).unsqueeze(1)).mean();
      const double lv = loss.item<double>();
      check_finite("bc/loss", lv);
      opt.zero_grad();
      loss.backward();
      opt.step();
      sum += lv;
      ++n;
    }
    last_loss = sum / std::max<int64_t>(1, n);
  }
  double acc;
  {
    torch::NoGradGuard ng;
    const auto lp = masked_log_probs(model_->logits(b_obs), b_mask);
    acc = (lp.argmax(1) == b_act).to(torch::kFloat64).mean().item<double>();
  }
  Metrics m;
  m.update = 0;
  m.global_step = 0;
  m.set("bc/loss", last_loss);
  m.set("bc/accuracy", acc);
  m.set("bc/samples", static_cast<double>(B));
  return m;
}

// ---------------------------------------------------------------------------------------------
// Final evaluation: greedy policy vs the env's best fixed strategy on the same episodes.
// ---------------------------------------------------------------------------------------------
Metrics Trainer::final_evaluation() {
  ConfigDoc doc = ConfigDoc::load_string(resolved_yaml_, run_dir_ + "/config.yaml (final_eval)");
  doc.apply_overrides(cfg_.final_eval.set);
  doc.apply_override("env.num_envs=1");  // one sub-environment: the episode sequence is fixed
  const RunConfig ecfg = RunConfig::parse(doc.root());
  auto run_one = [&](bool expert, EpisodeStats& stats) -> bool {
    auto env = ecfg.make_env_instance(1);
    const EnvSpec& sp = env->spec();
    if (sp.obs_dim != spec_.obs_dim || sp.n_actions != spec_.n_actions)
      fail("final_eval: the evaluation environment has obs_dim ", sp.obs_dim, " and ", sp.n_actions,
           " actions; the policy was trained on ", spec_.obs_dim, " and ", spec_.n_actions);
    int pass_idx = -1;
    for (size_t k = 0; k < sp.extra_names.size(); ++k)
      if (sp.extra_names[k] == "pass") pass_idx = static_cast<int>(k);
    env->reset(derive_seed(cfg_.seed, 0xE7A1));
    int32_t a = 0;
    const int64_t max_steps = int64_t(cfg_.final_eval.episodes) * std::max(1, sp.max_episode_steps) * 4 + 100000;
    for (int64_t t = 0; t < max_steps; ++t) {
      if (expert) {
        if (!env->expert_actions(&a)) return false;
      } else {
        torch::NoGradGuard ng;
        const auto lp = masked_log_probs(model_->logits(obs_tensor(env->obs(), 1, sp.obs_dim)),
                                         mask_tensor(env->action_mask(), 1, sp.n_actions));
        a = static_cast<int32_t>(lp.argmax(1).item<int64_t>());
      }
      env->step(&a);
      for (const auto& r : env->finished()) {
        if (pass_idx >= 0 && r.extras[pass_idx] >= 1.0) return true;  // one full pass of the split
        stats.add(r);
        if (pass_idx < 0 && stats.count >= cfg_.final_eval.episodes) return true;
      }
    }
    return true;
  };
  EpisodeStats pol(spec_.extra_names), exp(spec_.extra_names);
  run_one(false, pol);
  Metrics m;
  m.update = update_;
  m.global_step = global_step_;
  Metrics tmp;
  pol.write(tmp);
  for (const auto& kv : tmp.values) m.set("eval/" + kv.first.substr(kv.first.find('/') + 1), kv.second);
  if (run_one(true, exp)) {
    Metrics te;
    exp.write(te);
    for (const auto& kv : te.values) m.set("eval/expert_" + kv.first.substr(kv.first.find('/') + 1), kv.second);
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// Checkpoints
// ---------------------------------------------------------------------------------------------
std::string Trainer::save_checkpoint() {
  char name[64];
  std::snprintf(name, sizeof name, "update_%08ld", static_cast<long>(update_));
  const fs::path root = fs::path(run_dir_) / "checkpoints";
  const fs::path final_dir = root / name;
  // An existing folder for this update holds this very state (training is deterministic and a
  // resumed run continues after it): never rewrite it, so `latest` never points at a half folder.
  if (!fs::exists(final_dir / "state.json")) {
    const fs::path tmp = root / (std::string(".tmp-") + name);
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    save_model_files(model_, tmp.string());
    {
      AtomicOutput out((tmp / "optimizer.pt").string());
      torch::save(*optimizer_, out.temp_path());
      out.commit();
    }
    if (ref_) {
      AtomicOutput out((tmp / "ref.pt").string());
      torch::save(ref_, out.temp_path());
      out.commit();
    }
    bool env_saved = false;
    if (env_ && env_->supports_state()) {
      write_file_atomic((tmp / "env_state.bin").string(), env_->save_state());
      env_saved = true;
    }
    if (jsonl_) jsonl_->flush();
    json recent = json::array();
    for (double r : recent_returns_) recent.push_back(r);
    json st = {{"format", "conductor-checkpoint"},
               {"version", kRunFormatVersion},
               {"conductor_version", kConductorVersion},
               {"config_fingerprint", fingerprint_},
               {"algo", cfg_.algo},
               {"update", update_},
               {"global_step", global_step_},
               {"episodes", episodes_},
               {"trainer_rng", rng_to_json(rng_)},
               {"recent_returns", recent},
               {"metrics_jsonl_bytes", jsonl_ ? jsonl_->bytes_written() : 0},
               {"env_state", env_saved ? json("env_state.bin") : json(nullptr)},
               {"has_ref", static_cast<bool>(ref_)}};
    write_json_atomic((tmp / "state.json").string(), st);
    fs::rename(tmp, final_dir);
  }
  write_file_atomic((root / "latest").string(), std::string(name) + "\n");
  // Keep the newest checkpoint_keep complete checkpoints.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string n = e.path().filename().string();
    if (e.is_directory() && n.rfind("update_", 0) == 0) names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  // Renamed out of the update_* names first, so a SIGKILL during remove_all never leaves a
  // half-deleted folder that still looks like a checkpoint (remove_stale_temporaries sweeps it).
  for (size_t i = 0; i + cfg_.checkpoint_keep < names.size(); ++i) {
    if (names[i] == name) continue;
    const fs::path doomed = root / (".tmp-pruned-" + names[i]);
    fs::remove_all(doomed);
    fs::rename(root / names[i], doomed);
    fs::remove_all(doomed);
  }
  return final_dir.string();
}

// A process killed mid-checkpoint leaves checkpoints/.tmp-* folders (a checkpoint being written
// or pruned) and AtomicOutput temporaries (`latest.tmp.<pid>.<hex>`, `final_eval.json.tmp...`).
// The resumed run may never rewrite that update (e.g. a SIGINT checkpoint off the checkpoint_every
// grid), so they would stay forever: remove them before resuming. Only one process trains a run.
void remove_stale_temporaries(const std::string& run_dir) {
  auto sweep = [](const fs::path& dir, std::initializer_list<const char*> prefixes) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return;
    std::vector<fs::path> stale;
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string n = e.path().filename().string();
      for (const char* p : prefixes)
        if (n.rfind(p, 0) == 0) stale.push_back(e.path());
    }
    for (const auto& p : stale) fs::remove_all(p);
  };
  sweep(fs::path(run_dir) / "checkpoints", {".tmp-", "latest.tmp."});
  sweep(fs::path(run_dir), {"config.yaml.tmp.", "run.json.tmp.", "final_eval.json.tmp."});
}

void Trainer::load_checkpoint(const std::string& ckpt) {
  const std::string state_path = ckpt + "/state.json";
  const json st = parse_json(read_file(state_path), state_path);
  try {
    if (st.at("format").get<std::string>() != "conductor-checkpoint")
      fail(state_path, ": not a conductor checkpoint");
    if (st.at("version").get<int>() != kRunFormatVersion)
      fail(state_path, ": checkpoint format version ", st.at("version").get<int>(), " (conductor ",
           st.value("conductor_version", "?"), "); this conductor ", kConductorVersion, " reads version ",
           kRunFormatVersion);
    if (st.at("config_fingerprint").get<std::string>() != fingerprint_)
      fail(state_path, ": checkpoint was written by a different config (fingerprint ",
           st.at("config_fingerprint").get<std::string>(), ", this config ", fingerprint_, ")");
    update_ = st.at("update").get<int64_t>();
    global_step_ = st.at("global_step").get<int64_t>();
    episodes_ = st.at("episodes").get<int64_t>();
    rng_from_json(rng_, st.at("trainer_rng"));
    recent_returns_.clear();
    for (const auto& r : st.at("recent_returns")) recent_returns_.push_back(r.get<double>());
    load_model_files(model_, ckpt);
    try {
      torch::load(*optimizer_, ckpt + "/optimizer.pt");
    } catch (const c10::Error& e) {
      fail(ckpt, "/optimizer.pt: cannot load the optimizer state: ", e.what_without_backtrace());
    }
    if (st.at("has_ref").get<bool>()) {
      ref_ = ActorCritic(model_->spec());
      torch::load(ref_, ckpt + "/ref.pt");
    }
    if (env_) {
      if (!st.at("env_state").is_null() && env_->supports_state()) {
        env_->load_state(read_file(ckpt + "/" + st.at("env_state").get<std::string>()));
      } else {
        env_->reset(derive_seed(cfg_.seed, 0xE1, static_cast<uint64_t>(update_)));
        resume_exact_ = false;
        std::cerr << "warning: environment '" << spec_.id
                  << "' cannot snapshot its state; resumed episodes restart from a re-seeded reset, so this "
                     "resumed run will not match an uninterrupted one exactly\n";
      }
    }
    const uint64_t bytes = st.at("metrics_jsonl_bytes").get<uint64_t>();
    if (cfg_.log.jsonl) jsonl_ = std::make_unique<JsonlSink>(run_dir_ + "/metrics.jsonl", bytes);
  } catch (const json::exception& e) {
    fail(state_path, ": invalid checkpoint state: ", e.what());
  }
}

TrainResult Trainer::run(bool resume) {
  const auto t0 = std::chrono::steady_clock::now();
  build();
  TrainResult res;
  res.run_dir = run_dir_;
  if (resume) {
    remove_stale_temporaries(run_dir_);
    const std::string ckpt = resolve_checkpoint_dir(run_dir_);
    load_checkpoint(ckpt);
    std::cerr << "resuming " << run_dir_ << " from " << fs::path(ckpt).filename().string() << " (update "
              << update_ << ", " << global_step_ << " steps)\n";
  } else {
    if (env_) env_->reset(derive_seed(cfg_.seed, 0xE0));
    if (cfg_.log.jsonl) jsonl_ = std::make_unique<JsonlSink>(run_dir_ + "/metrics.jsonl", 0);
  }
  if (cfg_.log.tensorboard) sinks_.push_back(std::make_unique<TensorBoardSink>(run_dir_));
  if (cfg_.log.console && opt_.console)
    sinks_.push_back(std::make_unique<ConsoleSink>(cfg_.total_steps, cfg_.num_updates(), cfg_.log.console_every));
  auto emit = [&](const Metrics& m) {
    if (jsonl_) jsonl_->write(m);
    for (auto& s : sinks_) s->write(m);
  };

  SignalScope signals;
  if (!resume) {
    if (cfg_.bc.enabled) {
      const Metrics m = bc_warmstart();
      emit(m);
      if (opt_.console)
        std::cerr << "bc warm start: " << static_cast<int64_t>(m.get("bc/samples")) << " expert samples, loss "
                  << m.get("bc/loss") << ", accuracy " << m.get("bc/accuracy") << "\n";
    }
    if (ref_coef_ > 0) ref_ = clone_actor_critic(model_);
  }
  auto finished = [&] {
    return cfg_.algo == "ppo" ? update_ >= cfg_.num_updates() : global_step_ >= cfg_.total_steps;
  };
  int64_t updates_this_process = 0;
  auto last_t = std::chrono::steady_clock::now();
  int64_t last_steps = global_step_;
  while (!finished()) {
    ++update_;
    Metrics m = cfg_.algo == "ppo" ? ppo_update() : grpo_update();
    const double dt = seconds_since(last_t);
    last_t = std::chrono::steady_clock::now();
    m.set("time/steps_per_s", dt > 0 ? (global_step_ - last_steps) / dt : 0.0);
    m.set("time/elapsed_s", seconds_since(t0));
    last_steps = global_step_;
    emit(m);
    res.last = m;
    ++updates_this_process;
    const bool stop = g_stop_signal.load() != 0 ||
                      (opt_.stop_after_updates >= 0 && updates_this_process >= opt_.stop_after_updates);
    if (stop) {
      res.interrupted = true;
      break;
    }
    if (cfg_.checkpoint_every > 0 && update_ % cfg_.checkpoint_every == 0 && !finished()) {
      if (jsonl_) jsonl_->flush();
      res.checkpoint_dir = save_checkpoint();
    }
  }
  if (g_stop_signal.load() != 0) res.interrupted = true;
  for (auto& s : sinks_) s->flush();
  if (jsonl_) jsonl_->flush();
  res.checkpoint_dir = save_checkpoint();
  res.updates = update_;
  res.global_step = global_step_;
  res.wall_seconds = seconds_since(t0);
  res.resume_exact = resume_exact_;
  if (cfg_.final_eval.enabled && !res.interrupted) {
    res.final_eval = final_evaluation();
    json j = json::object();
    for (const auto& kv : res.final_eval.values) j[kv.first] = std::isfinite(kv.second) ? json(kv.second) : json(nullptr);
    j["set"] = cfg_.final_eval.set;
    write_json_atomic(run_dir_ + "/final_eval.json", j);
  }
  return res;
}

// The resolved config's lines without the leading comment and the `log` block (not compared).
std::vector<std::string> comparable_lines(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  std::string line;
  bool in_log = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '#') continue;
    if (!line.empty() && line[0] != ' ') in_log = line.rfind("log:", 0) == 0;
    if (!in_log) out.push_back(line);
  }
  return out;
}

std::string first_difference(const std::string& a, const std::string& b) {
  const auto la = comparable_lines(a), lb = comparable_lines(b);
  for (size_t i = 0; i < std::max(la.size(), lb.size()); ++i) {
    const std::string x = i < la.size() ? la[i] : "<end>", y = i < lb.size() ? lb[i] : "<end>";
    if (x != y) return "run has '" + x + "', this config has '" + y + "'";
  }
  return "same keys, different values";
}

}  // namespace

ConfigDoc load_run_config(const std::string& run_dir, const std::vector<std::string>& overrides) {
  const std::string path = run_dir + "/config.yaml";
  if (!fs::exists(path)) fail(run_dir, ": not a conductor run folder (no config.yaml)");
  ConfigDoc doc = ConfigDoc::load_file(path);
  doc.apply_overrides(overrides);
  return doc;
}

TrainResult run_training(const ConfigDoc& doc, const TrainOptions& options) {
  RunConfig cfg = RunConfig::parse(doc.root());
  // Build one env instance now so the env's own keys are read (and checked) before config.yaml
  // is written; the trainer builds its own instances.
  cfg.make_env_instance(1);
  const std::string resolved = doc.resolved_yaml();
  const std::string fp = config_fingerprint(resolved);
  const std::string& dir = options.run_dir;
  if (dir.empty()) fail("train: no run folder given");
  const std::string run_json = dir + "/run.json";
  if (options.resume) {
    if (!fs::exists(run_json)) fail(dir, ": not a conductor run folder (no run.json); nothing to resume");
    const json rj = parse_json(read_file(run_json), run_json);
    const int version = rj.value("version", -1);
    if (rj.value("format", "") != "conductor-run" || version != kRunFormatVersion)
      fail(run_json, ": run format version ", version, " written by conductor ", rj.value("conductor_version", "?"),
           "; this conductor ", kConductorVersion, " resumes version ", kRunFormatVersion, " only");
    if (rj.value("config_fingerprint", "") != fp) {
      std::string saved;
      try {
        saved = read_file(dir + "/config.yaml");
      } catch (const Error&) {
      }
      fail(dir, ": cannot resume: this run was started from a different config (",
           first_difference(saved, resolved), "); resume with `conductor train --resume ", dir,
           "` (its own config.yaml) or start a new run folder");
    }
  } else {
    if (fs::exists(run_json))
      fail(dir, ": already holds a run; resume it with --resume or choose another --out folder");
    make_dirs(dir);
    write_file_atomic(dir + "/config.yaml", resolved);
    write_json_atomic(run_json, json{{"format", "conductor-run"},
                                     {"version", kRunFormatVersion},
                                     {"conductor_version", kConductorVersion},
                                     {"seed", cfg.seed},
                                     {"config_fingerprint", fp},
                                     {"env", cfg.env_id},
                                     {"algo", cfg.algo}});
  }
  Trainer trainer(std::move(cfg), options, dir, fp, resolved);
  return trainer.run(options.resume);
}

double bench_ppo_update(int batch, int epochs, int minibatch, int obs_dim, int n_actions, int threads,
                        int repeats) {
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  MlpSpec spec;
  spec.obs_dim = obs_dim;
  spec.n_actions = n_actions;
  ActorCritic model(spec);
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(2.5e-4).eps(1e-5));
  const auto obs = torch::randn({batch, obs_dim});
  const auto mask = torch::ones({batch, n_actions}, torch::kBool);
  const auto act = torch::randint(0, n_actions, {batch}, torch::kInt64);
  const auto adv = torch::randn({batch});
  const auto ret = torch::randn({batch});
  torch::Tensor old_lp, old_v;
  {
    torch::NoGradGuard ng;
    old_lp = masked_log_probs(model->logits(obs), mask).gather(1, act.unsqueeze(1)).squeeze(1);
    old_v = model->value(obs);
  }
  Rng rng(1);
  const auto ps = model->parameters();
  double best = 0.0;
  for (int rep = 0; rep < repeats; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int e = 0; e < epochs; ++e) {
      const auto perm = permutation(batch, rng);
      for (int64_t s = 0; s + minibatch <= batch; s += minibatch) {
        const auto idx = torch::from_blob(const_cast<int64_t*>(perm.data()) + s, {minibatch}, torch::kInt64);
        const auto o = obs.index_select(0, idx);
        const auto lp_all = masked_log_probs(model->logits(o), mask.index_select(0, idx));
        const auto a = act.index_select(0, idx);
        const auto new_lp = lp_all.gather(1, a.unsqueeze(1)).squeeze(1);
        const auto loss = clipped_surrogate_loss(new_lp, old_lp.index_select(0, idx),
                                                 normalize_advantages(adv.index_select(0, idx)), 0.2) -
                          0.01 * masked_entropy(lp_all).mean() +
                          0.5 * value_loss(model->value(o), old_v.index_select(0, idx), ret.index_select(0, idx),
                                           0.2, true);
        opt.zero_grad();
        loss.backward();
        torch::nn::utils::clip_grad_norm_(ps, 0.5);
        opt.step();
      }
    }
    const double dt = seconds_since(t0);
    best = std::max(best, double(batch) * epochs / dt);
  }
  return best;
}

}  // namespace conductor
