// Contextual bandit: known optimum, masks, determinism, state.
#include <gtest/gtest.h>

#include "envs/bandit.h"
#include "envs/conformance.h"

namespace conductor {
namespace {

TEST(Bandit, Conformance) {
  BanditConfig cfg;
  cfg.masked_trap = true;
  testing::EnvConformanceOptions o;
  o.steps = 300;
  testing::check_env_conformance([cfg] { return make_bandit(cfg, 5); }, o);
}

TEST(Bandit, ProblemHasOneOptimalAllowedActionPerContext) {
  BanditConfig cfg;
  cfg.n_contexts = 6;
  cfg.n_actions = 5;
  cfg.masked_trap = true;
  const BanditProblem p = BanditProblem::make(cfg);
  for (int c = 0; c < 6; ++c) {
    const int opt = p.optimal[c];
    EXPECT_EQ(p.mean[c * 5 + opt], 1.0);
    EXPECT_TRUE(p.allowed[c * 5 + opt]);
    ASSERT_GE(p.trap[c], 0);
    EXPECT_NE(p.trap[c], opt);
    EXPECT_FALSE(p.allowed[c * 5 + p.trap[c]]);
    EXPECT_EQ(p.mean[c * 5 + p.trap[c]], 2.0);
    for (int a = 0; a < 5; ++a)
      if (a != opt && a != p.trap[c]) {
        EXPECT_LE(p.mean[c * 5 + a], 0.5);
      }
  }
}

TEST(Bandit, RewardsAreTheTableMeansWithoutNoise) {
  BanditConfig cfg;
  cfg.noise = 0.0;
  auto env = make_bandit(cfg, 4);
  const BanditProblem p = BanditProblem::make(cfg);
  env->reset(2);
  for (int t = 0; t < 50; ++t) {
    std::vector<int32_t> a(4);
    std::vector<int> ctx(4);
    for (int i = 0; i < 4; ++i) {
      for (int c = 0; c < cfg.n_contexts; ++c)
        if (env->obs()[i * cfg.n_contexts + c] == 1.f) ctx[i] = c;
      a[i] = (t + i) % cfg.n_actions;
    }
    env->step(a.data());
    for (int i = 0; i < 4; ++i) {
      EXPECT_FLOAT_EQ(env->reward()[i], static_cast<float>(p.mean[ctx[i] * cfg.n_actions + a[i]]));
      EXPECT_EQ(env->terminated()[i], 1);
    }
    ASSERT_EQ(env->finished().size(), 4u);
    for (const auto& r : env->finished())
      EXPECT_EQ(r.extras[0], a[r.env_index] == p.optimal[ctx[r.env_index]] ? 1.0 : 0.0);
  }
}

TEST(Bandit, MaskedTrapActionIsRejected) {
  BanditConfig cfg;
  cfg.masked_trap = true;
  auto env = make_bandit(cfg, 1);
  const BanditProblem p = BanditProblem::make(cfg);
  env->reset(4);
  int c = 0;
  for (int k = 0; k < cfg.n_contexts; ++k)
    if (env->obs()[k] == 1.f) c = k;
  EXPECT_EQ(env->action_mask()[p.trap[c]], 0);
#ifndef NDEBUG
  const int32_t a = p.trap[c];
  EXPECT_THROW(env->step(&a), InternalError);
#endif
}

TEST(Bandit, ExpertIsTheBestFixedActionAndAllowed) {
  BanditConfig cfg;
  auto env = make_bandit(cfg, 8);
  const BanditProblem p = BanditProblem::make(cfg);
  env->reset(1);
  std::vector<int32_t> a(8);
  ASSERT_TRUE(env->expert_actions(a.data()));
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(a[i], p.best_fixed_action);
    EXPECT_EQ(env->action_mask()[i * cfg.n_actions + a[i]], 1);
  }
}

TEST(Bandit, SaveAndLoadStateContinueExactly) {
  BanditConfig cfg;
  auto a = make_bandit(cfg, 3);
  auto b = make_bandit(cfg, 3);
  a->reset(5);
  std::vector<int32_t> act = {0, 1, 2};
  for (int t = 0; t < 7; ++t) a->step(act.data());
  b->reset(99);
  b->load_state(a->save_state());
  for (int t = 0; t < 20; ++t) {
    a->step(act.data());
    b->step(act.data());
    for (int i = 0; i < 3; ++i) ASSERT_EQ(a->reward()[i], b->reward()[i]);
  }
}

}  // namespace
}  // namespace conductor
