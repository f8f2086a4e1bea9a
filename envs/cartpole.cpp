#include "envs/cartpole.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/random.h"
#include "envs/registry.h"
#include "world/state_blob.h"

namespace conductor {

CartPoleConfig CartPoleConfig::parse(ConfigReader r) {
  CartPoleConfig c;
  c.max_episode_steps = r.get_in<int>("max_episode_steps", c.max_episode_steps, 1, 1000000);
  r.finish();
  return c;
}

int cartpole_heuristic_action(const float* obs) {
  // Push the cart under the pole: theta + theta_dot decides (a classic hand-written controller).
  return (obs[2] + obs[3] > 0.f) ? 1 : 0;
}

namespace {

// Gymnasium CartPole-v1 constants.
constexpr double kGravity = 9.8;
constexpr double kMassCart = 1.0;
constexpr double kMassPole = 0.1;
constexpr double kTotalMass = kMassCart + kMassPole;
constexpr double kLength = 0.5;  // half the pole's length
constexpr double kPoleMassLength = kMassPole * kLength;
constexpr double kForceMag = 10.0;
constexpr double kTau = 0.02;
constexpr double kThetaThreshold = 12.0 * 2.0 * M_PI / 360.0;
constexpr double kXThreshold = 2.4;

struct SubEnv {
  Rng rng;
  double s[4] = {0, 0, 0, 0};
  int t = 0;
  double ret = 0.0;
};

class CartPoleEnv final : public VectorEnv {
 public:
  CartPoleEnv(const CartPoleConfig& cfg, int n) : cfg_(cfg), n_(n), envs_(n) {
    if (n <= 0) fail("cartpole: num_envs must be positive, got ", n);
    spec_.id = "cartpole";
    spec_.obs_dim = 4;
    spec_.n_actions = 2;
    spec_.max_episode_steps = cfg.max_episode_steps;
    spec_.action_names = {"left", "right"};
    obs_.assign(n * 4, 0.f);
    final_obs_.assign(n * 4, 0.f);
    mask_.assign(n * 2, 1);
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
      envs_[i].rng.reseed(derive_seed(seed, static_cast<uint64_t>(first_ + i)));
      start_episode(i);
    }
    std::fill(reward_.begin(), reward_.end(), 0.f);
    std::fill(term_.begin(), term_.end(), 0);
    std::fill(trunc_.begin(), trunc_.end(), 0);
    finished_.clear();
  }

  void step(const int32_t* actions) override {
    finished_.clear();
    for (int i = 0; i < n_; ++i) {
      const int a = actions[i];
#ifndef NDEBUG
      CONDUCTOR_CHECK(a == 0 || a == 1, "cartpole env ", i, ": action ", a, " outside {0, 1}");
#endif
      SubEnv& e = envs_[i];
      double& x = e.s[0];
      double& x_dot = e.s[1];
      double& theta = e.s[2];
      double& theta_dot = e.s[3];
      const double force = a == 1 ? kForceMag : -kForceMag;
      const double costheta = std::cos(theta), sintheta = std::sin(theta);
      const double temp = (force + kPoleMassLength * theta_dot * theta_dot * sintheta) / kTotalMass;
      const double thetaacc = (kGravity * sintheta - costheta * temp) /
                              (kLength * (4.0 / 3.0 - kMassPole * costheta * costheta / kTotalMass));
      const double xacc = temp - kPoleMassLength * thetaacc * costheta / kTotalMass;
      x = x + kTau * x_dot;
      x_dot = x_dot + kTau * xacc;
      theta = theta + kTau * theta_dot;
      theta_dot = theta_dot + kTau * thetaacc;
      e.t += 1;
      const bool terminated = x < -kXThreshold || x > kXThreshold || theta < -kThetaThreshold ||
                              theta > kThetaThreshold;
      const bool truncated = !terminated && e.t >= cfg_.max_episode_steps;
      reward_[i] = 1.f;
      e.ret += 1.0;
      term_[i] = terminated;
      trunc_[i] = truncated;
      write_obs(i, obs_.data());
      if (terminated || truncated) {
        std::memcpy(&final_obs_[i * 4], &obs_[i * 4], 4 * sizeof(float));
        EpisodeRecord rec;
        rec.env_index = i;
        rec.episode_return = e.ret;
        rec.length = e.t;
        rec.truncated = truncated;
        finished_.push_back(rec);
        start_episode(i);
      }
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
    w.pod(kMagic);
    w.pod(n_);
    for (const auto& e : envs_) {
      w.rng(e.rng);
      w.put(e.s, sizeof(e.s));
      w.pod(e.t);
      w.pod(e.ret);
    }
    return w.out;
  }
  void load_state(const std::string& blob) override {
    StateReader r{blob, "cartpole"};
    if (r.pod<uint32_t>() != kMagic) fail("cartpole: environment state has the wrong format");
    const int n = r.pod<int>();
    if (n != n_) fail("cartpole: environment state holds ", n, " sub-environments, this env has ", n_);
    for (int i = 0; i < n_; ++i) {
      SubEnv& e = envs_[i];
      r.rng(e.rng);
      r.get(e.s, sizeof(e.s));
      e.t = r.pod<int>();
      e.ret = r.pod<double>();
      write_obs(i, obs_.data());
    }
    r.finish();
    finished_.clear();
  }

  bool expert_actions(int32_t* actions, Expert expert = Expert::kBestFixed) const override {
    if (expert != Expert::kBestFixed) return false;
    for (int i = 0; i < n_; ++i) actions[i] = cartpole_heuristic_action(&obs_[i * 4]);
    return true;
  }

 private:
  static constexpr uint32_t kMagic = 0x43504F4C;  // "CPOL"
  void start_episode(int i) {
    SubEnv& e = envs_[i];
    for (double& v : e.s) v = e.rng.uniform(-0.05, 0.05);
    e.t = 0;
    e.ret = 0.0;
    write_obs(i, obs_.data());
  }
  void write_obs(int i, float* dst) const {
    for (int k = 0; k < 4; ++k) dst[i * 4 + k] = static_cast<float>(envs_[i].s[k]);
  }

  CartPoleConfig cfg_;
  int n_;
  int first_ = 0;  // global index of sub-environment 0 (set_first_index)
  EnvSpec spec_;
  std::vector<SubEnv> envs_;
  std::vector<float> obs_, final_obs_, reward_;
  std::vector<uint8_t> mask_, term_, trunc_;
  std::vector<EpisodeRecord> finished_;
};

}  // namespace

std::unique_ptr<VectorEnv> make_cartpole(const CartPoleConfig& cfg, int num_envs) {
  return std::make_unique<CartPoleEnv>(cfg, num_envs);
}

namespace builtin_envs {
void register_cartpole() {
  register_env("cartpole", [](ConfigReader& cfg, int num_envs) {
    return make_cartpole(CartPoleConfig::parse(cfg), num_envs);
  });
}
}  // namespace builtin_envs

}  // namespace conductor
