#include "envs/bandit.h"

#include <cstring>

#include "core/error.h"
#include "core/random.h"
#include "envs/registry.h"
#include "world/state_blob.h"

namespace conductor {

BanditConfig BanditConfig::parse(ConfigReader r) {
  BanditConfig c;
  c.n_contexts = r.get_in<int>("n_contexts", c.n_contexts, 1, 4096);
  c.masked_trap = r.get<bool>("masked_trap", c.masked_trap);
  c.n_actions = r.get_in<int>("n_actions", c.n_actions, c.masked_trap ? 3 : 2, 4096);
  c.noise = r.get_in<double>("noise", c.noise, 0.0, 100.0);
  c.problem_seed = r.get<uint64_t>("problem_seed", c.problem_seed);
  r.finish();
  return c;
}

BanditProblem BanditProblem::make(const BanditConfig& cfg) {
  BanditProblem p;
  p.n_contexts = cfg.n_contexts;
  p.n_actions = cfg.n_actions;
  const int C = cfg.n_contexts, A = cfg.n_actions;
  p.mean.assign(C * A, 0.0);
  p.allowed.assign(C * A, 1);
  p.optimal.assign(C, 0);
  p.trap.assign(C, -1);
  Rng rng(derive_seed(cfg.problem_seed, 0xBA4D17));
  for (int c = 0; c < C; ++c) {
    for (int a = 0; a < A; ++a) p.mean[c * A + a] = rng.uniform(0.0, 0.5);
    p.optimal[c] = static_cast<int>(rng.below(A));
    p.mean[c * A + p.optimal[c]] = 1.0;
    if (cfg.masked_trap) {
      int t = static_cast<int>(rng.below(A - 1));
      if (t >= p.optimal[c]) ++t;  // any action except the optimal one
      p.trap[c] = t;
      p.mean[c * A + t] = 2.0;
      p.allowed[c * A + t] = 0;
    }
  }
  // Best fixed strategy: the action allowed everywhere with the highest mean over contexts.
  double best = -1e300;
  p.best_fixed_action = -1;
  for (int a = 0; a < A; ++a) {
    bool everywhere = true;
    double sum = 0.0;
    for (int c = 0; c < C; ++c) {
      everywhere = everywhere && p.allowed[c * A + a];
      sum += p.mean[c * A + a];
    }
    if (everywhere && sum > best) {
      best = sum;
      p.best_fixed_action = a;
    }
  }
  if (p.best_fixed_action < 0) p.best_fixed_action = p.optimal[0];  // no action allowed everywhere
  return p;
}

namespace {

class BanditEnv final : public VectorEnv {
 public:
  BanditEnv(const BanditConfig& cfg, int n)
      : cfg_(cfg), problem_(BanditProblem::make(cfg)), n_(n), rngs_(n), context_(n, 0) {
    if (n <= 0) fail("bandit: num_envs must be positive, got ", n);
    spec_.id = "bandit";
    spec_.obs_dim = cfg.n_contexts;
    spec_.n_actions = cfg.n_actions;
    spec_.max_episode_steps = 1;
    for (int a = 0; a < cfg.n_actions; ++a) spec_.action_names.push_back("arm" + std::to_string(a));
    spec_.extra_names = {"optimal", "context"};
    obs_.assign(n * cfg.n_contexts, 0.f);
    final_obs_.assign(n * cfg.n_contexts, 0.f);
    mask_.assign(n * cfg.n_actions, 1);
    reward_.assign(n, 0.f);
    term_.assign(n, 0);
    trunc_.assign(n, 0);
  }
  const EnvSpec& spec() const override { return spec_; }
  int num_envs() const override { return n_; }

  bool set_first_index(int first) override {
    first_ = first;
    return true;
  }
  void reset(uint64_t seed) override {
    for (int i = 0; i < n_; ++i) {
      rngs_[i].reseed(derive_seed(seed, static_cast<uint64_t>(first_ + i)));
      new_context(i);
    }
    std::fill(reward_.begin(), reward_.end(), 0.f);
    std::fill(term_.begin(), term_.end(), 0);
    finished_.clear();
  }

  void step(const int32_t* actions) override {
    finished_.clear();
    const int A = cfg_.n_actions, C = cfg_.n_contexts;
    for (int i = 0; i < n_; ++i) {
      const int a = actions[i];
      const int c = context_[i];
#ifndef NDEBUG
      CONDUCTOR_CHECK(a >= 0 && a < A && mask_[i * A + a], "bandit env ", i, ": action ", a,
                      " is masked or out of range");
#endif
      const double r = problem_.mean[c * A + a] + (cfg_.noise > 0 ? cfg_.noise * rngs_[i].normal() : 0.0);
      reward_[i] = static_cast<float>(r);
      term_[i] = 1;
      std::memcpy(&final_obs_[i * C], &obs_[i * C], C * sizeof(float));
      EpisodeRecord rec;
      rec.env_index = i;
      rec.episode_return = reward_[i];
      rec.length = 1;
      rec.extras = {a == problem_.optimal[c] ? 1.0 : 0.0, static_cast<double>(c)};
      finished_.push_back(rec);
      new_context(i);
    }
  }

  const float* obs() const override { return obs_.data(); }
  const uint8_t* action_mask() const override { return mask_.data(); }
  const float* reward() const override { return reward_.data(); }
  const uint8_t* terminated() const override { return term_.data(); }
  const uint8_t* truncated() const override { return trunc_.data(); }
  const float* final_obs() const override { return final_obs_.data(); }
  const std::vector<EpisodeRecord>& finished() const override { return finished_; }

  bool supports_state() const override { return true; }
  std::string save_state() const override {
    StateWriter w;
    w.pod(n_);
    for (int i = 0; i < n_; ++i) {
      w.rng(rngs_[i]);
      w.pod(context_[i]);
    }
    return w.out;
  }
  void load_state(const std::string& blob) override {
    StateReader r{blob, "bandit"};
    const int n = r.pod<int>();
    if (n != n_) fail("bandit: environment state holds ", n, " sub-environments, this env has ", n_);
    for (int i = 0; i < n_; ++i) {
      r.rng(rngs_[i]);
      const int c = r.pod<int>();
      if (c < 0 || c >= cfg_.n_contexts) fail("bandit: environment state has context ", c, " out of range");
      set_context(i, c);
    }
    r.finish();
    finished_.clear();
  }

  bool expert_actions(int32_t* actions, Expert expert = Expert::kBestFixed) const override {
    if (expert != Expert::kBestFixed) return false;
    for (int i = 0; i < n_; ++i) {
      const int c = context_[i];
      int a = problem_.best_fixed_action;
      if (!problem_.allowed[c * cfg_.n_actions + a]) a = problem_.optimal[c];
      actions[i] = a;
    }
    return true;
  }

 private:
  void new_context(int i) { set_context(i, static_cast<int>(rngs_[i].below(cfg_.n_contexts))); }
  void set_context(int i, int c) {
    const int C = cfg_.n_contexts, A = cfg_.n_actions;
    context_[i] = c;
    std::fill(&obs_[i * C], &obs_[i * C] + C, 0.f);
    obs_[i * C + c] = 1.f;
    std::memcpy(&mask_[i * A], &problem_.allowed[c * A], A);
  }

  BanditConfig cfg_;
  BanditProblem problem_;
  int n_;
  int first_ = 0;  // global index of sub-environment 0 (set_first_index)
  EnvSpec spec_;
  std::vector<Rng> rngs_;
  std::vector<int> context_;
  std::vector<float> obs_, final_obs_, reward_;
  std::vector<uint8_t> mask_, term_, trunc_;
  std::vector<EpisodeRecord> finished_;
};

}  // namespace

std::unique_ptr<VectorEnv> make_bandit(const BanditConfig& cfg, int num_envs) {
  return std::make_unique<BanditEnv>(cfg, num_envs);
}

namespace builtin_envs {
void register_bandit() {
  register_env("bandit", [](ConfigReader& cfg, int num_envs) {
    return make_bandit(BanditConfig::parse(cfg), num_envs);
  });
}
}  // namespace builtin_envs

}  // namespace conductor
