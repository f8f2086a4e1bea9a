// The conformance suite every environment and reward model must pass (a GoogleTest helper; include
// it only from tests). Usage:
//
//   #include "envs/conformance.h"
//   TEST(CartPole, Conformance) {
//     conductor::testing::EnvConformanceOptions o;
//     conductor::testing::check_env_conformance([] { return make_my_env(8); }, o);
//   }
//
// check_env_conformance drives fresh environments with random allowed actions (a seeded Rng) and
// checks, with gtest assertions that name the environment, step and sub-environment:
//  - spec: obs_dim, n_actions > 0; action_names has n_actions entries; num_envs > 0;
//  - shapes and values: every obs / final_obs / reward is finite; masks are 0/1 with at least one
//    allowed action per sub-environment;
//  - masks respected: only allowed actions are ever sent; in builds without NDEBUG a masked action
//    must throw (options.expect_masked_action_throws);
//  - episodes (terminated and truncated may both be set, as in Gymnasium: the episode ended at the
//    step limit but its outcome is final; trainers bootstrap only truncated && !terminated): one
//    EpisodeRecord per ended sub-environment,
//    with its env_index, the sum of the step rewards (as doubles) equal to episode_return, its
//    length equal to the steps counted, truncated flag equal to the step's, extras of the size of
//    spec().extra_names and finite; truncation only at length == max_episode_steps (when > 0) and
//    no episode longer than max_episode_steps;
//  - determinism: two environments reset with the same seed and fed the same actions give identical
//    observations, masks, rewards and flags; a different seed gives a different trajectory (unless
//    options.seed_changes_trajectory is false).
//
// check_outcome_model checks a reward model's outcome table the same way (see below).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/random.h"
#include "envs/env.h"
#include "world/outcome_model.h"

namespace conductor::testing {

struct EnvConformanceOptions {
  int steps = 2000;                  // batched steps per run
  uint64_t seed = 12345;
  uint64_t other_seed = 54321;
  int min_episodes = 1;              // at least this many episodes must end during the run
  bool expect_masked_action_throws = true;  // checked only when NDEBUG is not defined
  double return_tolerance = 1e-9;    // |sum of rewards - episode_return| (rewards are floats)
  // False for environments that draw nothing at random (e.g. sequential evaluation without faults):
  // then only "same seed, same trajectory" is checked.
  bool seed_changes_trajectory = true;
};

namespace conformance_detail {

inline bool all_finite(const float* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i])) return false;
  return true;
}

// Picks a uniformly random allowed action per sub-environment.
inline void random_actions(const VectorEnv& env, Rng& rng, std::vector<int32_t>& out) {
  const int A = env.spec().n_actions;
  out.resize(env.num_envs());
  for (int i = 0; i < env.num_envs(); ++i) {
    const uint8_t* m = env.action_mask() + static_cast<std::size_t>(i) * A;
    int allowed = 0;
    for (int a = 0; a < A; ++a) allowed += m[a] != 0;
    int pick = allowed > 0 ? static_cast<int>(rng.below(allowed)) : 0;
    out[i] = -1;
    for (int a = 0; a < A; ++a)
      if (m[a] && pick-- == 0) {
        out[i] = a;
        break;
      }
  }
}

struct Trace {
  std::vector<float> obs, rew;
  std::vector<uint8_t> mask, term, trunc;
};

inline Trace run(VectorEnv& env, uint64_t seed, int steps, uint64_t action_seed) {
  Trace t;
  const std::size_t N = env.num_envs(), D = env.spec().obs_dim, A = env.spec().n_actions;
  env.reset(seed);
  Rng rng(action_seed);
  std::vector<int32_t> actions;
  for (int s = 0; s < steps; ++s) {
    t.obs.insert(t.obs.end(), env.obs(), env.obs() + N * D);
    t.mask.insert(t.mask.end(), env.action_mask(), env.action_mask() + N * A);
    random_actions(env, rng, actions);
    env.step(actions.data());
    t.rew.insert(t.rew.end(), env.reward(), env.reward() + N);
    t.term.insert(t.term.end(), env.terminated(), env.terminated() + N);
    t.trunc.insert(t.trunc.end(), env.truncated(), env.truncated() + N);
  }
  return t;
}

}  // namespace conformance_detail

inline void check_env_conformance(const std::function<std::unique_ptr<VectorEnv>()>& make,
                                  const EnvConformanceOptions& options = {}) {
  using namespace conformance_detail;
  std::unique_ptr<VectorEnv> env = make();
  ASSERT_TRUE(env != nullptr);
  const EnvSpec& spec = env->spec();
  const std::string name = "env '" + spec.id + "'";
  ASSERT_GT(env->num_envs(), 0) << name;
  ASSERT_GT(spec.obs_dim, 0) << name;
  ASSERT_GT(spec.n_actions, 0) << name;
  ASSERT_EQ(static_cast<int>(spec.action_names.size()), spec.n_actions) << name << ": action_names";
  const int N = env->num_envs(), D = spec.obs_dim, A = spec.n_actions;
  const std::size_t n_extras = spec.extra_names.size();

  env->reset(options.seed);
  Rng rng(options.seed ^ 0xA5A5A5A5ULL);
  std::vector<int32_t> actions;
  std::vector<double> ret(N, 0.0);
  std::vector<int> len(N, 0);
  int episodes = 0;
  for (int s = 0; s < options.steps; ++s) {
    ASSERT_TRUE(all_finite(env->obs(), static_cast<std::size_t>(N) * D)) << name << ": non-finite obs at step " << s;
    for (int i = 0; i < N; ++i) {
      int allowed = 0;
      for (int a = 0; a < A; ++a) {
        const uint8_t m = env->action_mask()[static_cast<std::size_t>(i) * A + a];
        ASSERT_TRUE(m == 0 || m == 1) << name << ": mask value " << int(m) << " at step " << s << " env " << i;
        allowed += m;
      }
      ASSERT_GT(allowed, 0) << name << ": no allowed action at step " << s << " env " << i;
    }
    random_actions(*env, rng, actions);
    env->step(actions.data());
    ASSERT_TRUE(all_finite(env->reward(), N)) << name << ": non-finite reward at step " << s;
    std::vector<int> ended;
    for (int i = 0; i < N; ++i) {
      ret[i] += static_cast<double>(env->reward()[i]);
      ++len[i];
      const bool term = env->terminated()[i] != 0, trunc = env->truncated()[i] != 0;
      if (spec.max_episode_steps > 0) {
        ASSERT_LE(len[i], spec.max_episode_steps) << name << ": episode longer than max_episode_steps, env " << i;
        if (trunc) {
          ASSERT_EQ(len[i], spec.max_episode_steps) << name << ": truncated before the horizon, env " << i;
        }
      }
      if (term || trunc) {
        ASSERT_TRUE(all_finite(env->final_obs() + static_cast<std::size_t>(i) * D, D))
            << name << ": non-finite final_obs, step " << s << " env " << i;
        ended.push_back(i);
      }
    }
    const auto& fin = env->finished();
    ASSERT_EQ(fin.size(), ended.size()) << name << ": one EpisodeRecord per ended episode, step " << s;
    for (const EpisodeRecord& rec : fin) {
      const int i = rec.env_index;
      ASSERT_TRUE(i >= 0 && i < N) << name << ": record env_index " << i;
      ASSERT_TRUE(env->terminated()[i] || env->truncated()[i]) << name << ": record for a running env " << i;
      EXPECT_NEAR(rec.episode_return, ret[i], options.return_tolerance)
          << name << ": episode_return is not the sum of the step rewards, env " << i << " step " << s;
      EXPECT_EQ(rec.length, len[i]) << name << ": episode length, env " << i;
      EXPECT_EQ(rec.truncated, env->truncated()[i] != 0) << name << ": record truncated flag, env " << i;
      ASSERT_EQ(rec.extras.size(), n_extras) << name << ": extras size";
      for (std::size_t e = 0; e < n_extras; ++e)
        EXPECT_TRUE(std::isfinite(rec.extras[e])) << name << ": extra '" << spec.extra_names[e] << "' not finite";
      ret[i] = 0.0;
      len[i] = 0;
      ++episodes;
    }
  }
  EXPECT_GE(episodes, options.min_episodes) << name << ": too few episodes ended";

#ifndef NDEBUG
  if (options.expect_masked_action_throws) {
    env->reset(options.seed);
    bool found = false;
    std::vector<int32_t> acts(N);
    Rng r2(options.seed);
    random_actions(*env, r2, acts);
    for (int a = 0; a < A && !found; ++a)
      if (!env->action_mask()[a]) {
        acts[0] = a;
        found = true;
      }
    if (found) {
      EXPECT_THROW(env->step(acts.data()), InternalError) << name << ": a masked action must throw";
    }
  }
#endif

  // Determinism.
  const int det_steps = std::min(options.steps, 300);
  std::unique_ptr<VectorEnv> a = make(), b = make(), c = make();
  const Trace ta = run(*a, options.seed, det_steps, 7), tb = run(*b, options.seed, det_steps, 7);
  EXPECT_TRUE(ta.obs == tb.obs) << name << ": same seed, different observations";
  EXPECT_TRUE(ta.mask == tb.mask) << name << ": same seed, different masks";
  EXPECT_TRUE(ta.rew == tb.rew) << name << ": same seed, different rewards";
  EXPECT_TRUE(ta.term == tb.term && ta.trunc == tb.trunc) << name << ": same seed, different episode ends";
  if (!options.seed_changes_trajectory) return;
  const Trace tc = run(*c, options.other_seed, det_steps, 7);
  EXPECT_FALSE(ta.obs == tc.obs && ta.rew == tc.rew) << name << ": a different seed gave an identical trajectory";
}

// Conformance of a reward model's outcome table: shapes, value ranges where available (quality in
// [0,1], cost >= 0, latency >= 0, all finite), and determinism (build(seed) twice is identical; the
// table of another seed may differ only where outcomes are predicted).
inline void check_outcome_model(const std::function<OutcomeTable(uint64_t seed)>& build, std::size_t n_queries,
                                std::size_t n_models) {
  const OutcomeTable t = build(1), u = build(1);
  const std::size_t n = n_queries * n_models;
  ASSERT_EQ(t.n_queries, n_queries);
  ASSERT_EQ(t.n_models, n_models);
  for (const std::size_t s : {t.quality.size(), t.cost_usd.size(), t.latency_s.size(), t.output_tokens.size(),
                              t.answer.size(), t.error.size(), t.available.size(), t.predicted.size()})
    ASSERT_EQ(s, n);
  std::size_t available = 0;
  for (std::size_t k = 0; k < n; ++k) {
    if (!t.available[k]) continue;
    ++available;
    EXPECT_TRUE(t.quality[k] >= 0.f && t.quality[k] <= 1.f) << "quality[" << k << "] = " << t.quality[k];
    EXPECT_TRUE(std::isfinite(t.cost_usd[k]) && t.cost_usd[k] >= 0) << "cost_usd[" << k << "] = " << t.cost_usd[k];
    EXPECT_TRUE(std::isfinite(t.latency_s[k]) && t.latency_s[k] >= 0) << "latency_s[" << k << "] = " << t.latency_s[k];
    EXPECT_GE(t.answer[k], -1);
  }
  EXPECT_GT(available, 0u) << "the reward model gives no outcome at all";
  EXPECT_TRUE(std::memcmp(t.quality.data(), u.quality.data(), n * sizeof(float)) == 0) << "same seed, different quality";
  EXPECT_TRUE(std::memcmp(t.cost_usd.data(), u.cost_usd.data(), n * sizeof(double)) == 0) << "same seed, different cost";
  EXPECT_TRUE(std::memcmp(t.latency_s.data(), u.latency_s.data(), n * sizeof(float)) == 0) << "same seed, different latency";
  EXPECT_TRUE(t.answer == u.answer && t.available == u.available);
}

}  // namespace conductor::testing
