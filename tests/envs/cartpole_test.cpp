// CartPole: Gymnasium CartPole-v1 dynamics, termination, truncation, determinism, resumable state.
#include <gtest/gtest.h>

#include <cmath>

#include "envs/cartpole.h"
#include "envs/conformance.h"
#include "envs/registry.h"

namespace conductor {
namespace {

// One Euler step of gymnasium/envs/classic_control/cartpole.py (v1), written out independently.
void reference_step(double s[4], int action) {
  const double g = 9.8, mc = 1.0, mp = 0.1, total = 1.1, l = 0.5, pml = 0.05, tau = 0.02;
  const double force = action == 1 ? 10.0 : -10.0;
  const double c = std::cos(s[2]), sn = std::sin(s[2]);
  const double temp = (force + pml * s[3] * s[3] * sn) / total;
  const double thacc = (g * sn - c * temp) / (l * (4.0 / 3.0 - mp * c * c / total));
  const double xacc = temp - pml * thacc * c / total;
  (void)mc;
  s[0] += tau * s[1];
  s[1] += tau * xacc;
  s[2] += tau * s[3];
  s[3] += tau * thacc;
}

TEST(CartPole, Conformance) {
  testing::EnvConformanceOptions o;
  o.steps = 3000;
  testing::check_env_conformance([] { return make_cartpole(CartPoleConfig{}, 6); }, o);
}

TEST(CartPole, FirstStepFromRestMatchesHandComputedDynamics) {
  // From the zero state pushing right: temp = 10/1.1, thetaacc = -temp / (0.5 (4/3 - 0.1/1.1))
  // = -14.634146..., xacc = temp - 0.05 thetaacc / 1.1 = 9.756097...; after one step of tau = 0.02:
  // x = 0, x_dot = 0.19512195, theta = 0, theta_dot = -0.29268293.
  double s[4] = {0, 0, 0, 0};
  reference_step(s, 1);
  EXPECT_NEAR(s[1], 0.19512195, 1e-8);
  EXPECT_NEAR(s[3], -0.29268293, 1e-8);
  EXPECT_EQ(s[0], 0.0);
  EXPECT_EQ(s[2], 0.0);
}

TEST(CartPole, StepsFollowGymnasiumDynamics) {
  auto env = make_cartpole(CartPoleConfig{}, 1);
  env->reset(3);
  double s[4];
  for (int k = 0; k < 4; ++k) {
    s[k] = env->obs()[k];
    EXPECT_LE(std::abs(s[k]), 0.05);  // initial state uniform in [-0.05, 0.05]
  }
  for (int t = 0; t < 8; ++t) {
    const int32_t a = t % 3 == 0 ? 0 : 1;
    reference_step(s, a);
    env->step(&a);
    ASSERT_EQ(env->terminated()[0], 0);
    EXPECT_EQ(env->reward()[0], 1.f);
    for (int k = 0; k < 4; ++k) EXPECT_NEAR(env->obs()[k], s[k], 1e-6) << "t=" << t << " k=" << k;
  }
}

TEST(CartPole, TerminatesWhenThePoleFalls) {
  auto env = make_cartpole(CartPoleConfig{}, 1);
  env->reset(1);
  const int32_t right = 1;
  int steps = 0;
  while (true) {
    env->step(&right);
    ++steps;
    ASSERT_LT(steps, 500) << "always pushing right must drop the pole";
    if (env->terminated()[0]) break;
  }
  EXPECT_EQ(env->truncated()[0], 0);
  ASSERT_EQ(env->finished().size(), 1u);
  EXPECT_EQ(env->finished()[0].length, steps);
  EXPECT_EQ(env->finished()[0].episode_return, steps);  // reward 1 per step, the last one included
  EXPECT_FALSE(env->finished()[0].truncated);
  // The final observation is past a threshold (12 degrees or 2.4 m); obs() already holds a new episode.
  const float* f = env->final_obs();
  EXPECT_TRUE(std::abs(f[2]) > 12.0 * 2.0 * M_PI / 360.0 || std::abs(f[0]) > 2.4);
  for (int k = 0; k < 4; ++k) EXPECT_LE(std::abs(env->obs()[k]), 0.05f);
}

TEST(CartPole, TruncatesAtMaxEpisodeSteps) {
  CartPoleConfig cfg;
  cfg.max_episode_steps = 25;
  auto env = make_cartpole(cfg, 1);
  env->reset(5);
  for (int t = 1; t <= 25; ++t) {
    int32_t a;
    ASSERT_TRUE(env->expert_actions(&a));  // the heuristic keeps the pole up for 25 steps
    env->step(&a);
    ASSERT_EQ(env->terminated()[0], 0) << "t=" << t;
    EXPECT_EQ(env->truncated()[0], t == 25 ? 1 : 0) << "t=" << t;
  }
  ASSERT_EQ(env->finished().size(), 1u);
  EXPECT_TRUE(env->finished()[0].truncated);
  EXPECT_EQ(env->finished()[0].episode_return, 25.0);
}

TEST(CartPole, HeuristicExpertBalancesTheFullEpisode) {
  auto env = make_cartpole(CartPoleConfig{}, 4);
  env->reset(11);
  std::vector<int32_t> a(4);
  int truncations = 0;
  for (int t = 0; t < 500; ++t) {
    env->expert_actions(a.data());
    env->step(a.data());
    for (int i = 0; i < 4; ++i) {
      ASSERT_EQ(env->terminated()[i], 0) << "env " << i << " fell at step " << t + 1;
      truncations += env->truncated()[i];
    }
  }
  EXPECT_EQ(truncations, 4);
}

TEST(CartPole, SaveAndLoadStateContinueExactly) {
  auto a = make_cartpole(CartPoleConfig{}, 3);
  auto b = make_cartpole(CartPoleConfig{}, 3);
  a->reset(9);
  Rng rng(1);
  std::vector<int32_t> act(3);
  for (int t = 0; t < 40; ++t) {
    for (auto& x : act) x = static_cast<int32_t>(rng.below(2));
    a->step(act.data());
  }
  b->reset(1234);
  b->load_state(a->save_state());
  for (int k = 0; k < 12; ++k) EXPECT_EQ(a->obs()[k], b->obs()[k]);
  for (int t = 0; t < 300; ++t) {
    for (auto& x : act) x = static_cast<int32_t>(rng.below(2));
    a->step(act.data());
    b->step(act.data());
    for (int k = 0; k < 12; ++k) ASSERT_EQ(a->obs()[k], b->obs()[k]) << "t=" << t;
  }
  auto c = make_cartpole(CartPoleConfig{}, 2);
  EXPECT_THROW(c->load_state(a->save_state()), Error);
  EXPECT_THROW(a->load_state("xx"), Error);
}

TEST(CartPole, RegisteredAndRejectsUnknownKeys) {
  ConfigDoc doc = ConfigDoc::load_string("id: cartpole\nmax_episode_steps: 100\n", "t.yaml");
  ConfigReader r = doc.root();
  r.required<std::string>("id");  // the caller reads id (and num_envs); the factory the rest
  auto env = make_env("cartpole", r, 2);
  EXPECT_EQ(env->spec().max_episode_steps, 100);
  ConfigDoc bad = ConfigDoc::load_string("max_episode_step: 100\n", "bad.yaml");
  ConfigReader rb = bad.root();
  try {
    make_env("cartpole", rb, 2);
    FAIL() << "unknown key accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("max_episode_step"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace conductor
