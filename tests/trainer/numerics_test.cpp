// GAE, group advantages, explained variance and LR annealing against hand-computed values.
// In the spirit of Stable-Baselines3's tests/test_gae.py: rewards and values are fixed so the
// expected advantages follow in closed form; termination cuts bootstrapping, truncation
// bootstraps from V(final_obs).
#include <gtest/gtest.h>

#include <cmath>

#include "trainer/numerics.h"

namespace conductor {
namespace {

struct Gae {
  std::vector<float> adv, ret;
};
Gae run(int T, int N, std::vector<float> r, std::vector<float> v, std::vector<uint8_t> term,
        std::vector<uint8_t> trunc, std::vector<float> fv, std::vector<float> last, double gamma, double lambda) {
  GaeInput in;
  in.T = T;
  in.N = N;
  in.rewards = r.data();
  in.values = v.data();
  in.terminated = term.data();
  in.truncated = trunc.data();
  in.final_values = fv.data();
  in.last_values = last.data();
  in.gamma = gamma;
  in.lambda = lambda;
  Gae g{std::vector<float>(T * N), std::vector<float>(T * N)};
  compute_gae(in, g.adv.data(), g.ret.data());
  return g;
}

TEST(Gae, NoEpisodeEndBootstrapsFromLastValue) {
  // gamma 0.9, lambda 0.8, r = 1, V = 0.5 everywhere: every delta = 1 + 0.45 - 0.5 = 0.95;
  // A2 = 0.95, A1 = 0.95 + 0.72 * 0.95 = 1.634, A0 = 0.95 + 0.72 * 1.634 = 2.12648.
  const auto g = run(3, 1, {1, 1, 1}, {0.5, 0.5, 0.5}, {0, 0, 0}, {0, 0, 0}, {0, 0, 0}, {0.5}, 0.9, 0.8);
  EXPECT_NEAR(g.adv[2], 0.95, 1e-6);
  EXPECT_NEAR(g.adv[1], 1.634, 1e-6);
  EXPECT_NEAR(g.adv[0], 2.12648, 1e-6);
  EXPECT_NEAR(g.ret[0], 2.62648, 1e-6);
}

TEST(Gae, TerminationDoesNotBootstrap) {
  // r = [1, 2, 3], V = [0.5, 1, 2], episode terminates at t = 1, V(last) = 4:
  // t2: 3 + 0.9 * 4 - 2 = 4.6; t1: 2 + 0 - 1 = 1 (nothing flows back from t2);
  // t0: delta = 1 + 0.9 * 1 - 0.5 = 1.4, A0 = 1.4 + 0.72 * 1 = 2.12.
  const auto g = run(3, 1, {1, 2, 3}, {0.5, 1, 2}, {0, 1, 0}, {0, 0, 0}, {0, 0, 0}, {4}, 0.9, 0.8);
  EXPECT_NEAR(g.adv[2], 4.6, 1e-6);
  EXPECT_NEAR(g.adv[1], 1.0, 1e-6);
  EXPECT_NEAR(g.adv[0], 2.12, 1e-6);
}

TEST(Gae, TruncationBootstrapsFromTheFinalObservationValue) {
  // Same, but the episode is truncated at t = 1 and V(final_obs) = 10:
  // t1: 2 + 0.9 * 10 - 1 = 10 (and no flow from t2); t0: A0 = 1.4 + 0.72 * 10 = 8.6.
  const auto g = run(3, 1, {1, 2, 3}, {0.5, 1, 2}, {0, 0, 0}, {0, 1, 0}, {0, 10, 0}, {4}, 0.9, 0.8);
  EXPECT_NEAR(g.adv[2], 4.6, 1e-6);
  EXPECT_NEAR(g.adv[1], 10.0, 1e-6);
  EXPECT_NEAR(g.adv[0], 8.6, 1e-5);
  EXPECT_NEAR(g.ret[1], 11.0, 1e-5);
}

TEST(Gae, LambdaOneGammaOneGivesMonteCarloReturns) {
  // Two envs interleaved [T x N]: env 0 gets rewards 1,2,3,4 with a termination at t = 1;
  // env 1 gets 1 each step, never ends, V(last) = 5. Returns with gamma = lambda = 1:
  // env 0: [3, 2, 7 + 0 ... ] -> t0: 1 + 2 = 3, t1: 2, t2: 3 + 4 + V(last)=0 -> 7, t3: 4.
  // env 1: t0: 4 + 5 = 9, t1: 8, t2: 7, t3: 6.
  const int T = 4, N = 2;
  std::vector<float> r = {1, 1, 2, 1, 3, 1, 4, 1};
  std::vector<float> v(T * N, 0.25f);
  std::vector<uint8_t> term = {0, 0, 1, 0, 0, 0, 0, 0};
  const auto g = run(T, N, r, v, term, std::vector<uint8_t>(8, 0), std::vector<float>(8, 0), {0, 5}, 1.0, 1.0);
  const float want0[] = {3, 2, 7, 4};
  const float want1[] = {9, 8, 7, 6};
  for (int t = 0; t < T; ++t) {
    EXPECT_NEAR(g.ret[t * N + 0], want0[t], 1e-6) << t;
    EXPECT_NEAR(g.ret[t * N + 1], want1[t], 1e-6) << t;
    EXPECT_NEAR(g.adv[t * N + 1], want1[t] - 0.25, 1e-6) << t;
  }
}

TEST(GroupAdvantages, NormalizeWithinEachGroup) {
  // Group 0: [1, 0, 0, 1] -> mean 0.5, population std 0.5 -> [1, -1, -1, 1].
  // Group 1: all equal -> 0. Group 2: [0, 0, 0, 4] -> mean 1, std sqrt(3) -> [-1/sqrt3 x3, 3/sqrt3].
  const auto a = group_advantages({1, 0, 0, 1, 2, 2, 2, 2, 0, 0, 0, 4}, 3, 4);
  const float want[] = {1, -1, -1, 1, 0, 0, 0, 0, float(-1 / std::sqrt(3.0)), float(-1 / std::sqrt(3.0)),
                        float(-1 / std::sqrt(3.0)), float(3 / std::sqrt(3.0))};
  for (int i = 0; i < 12; ++i) EXPECT_NEAR(a[i], want[i], 1e-6) << i;
}

TEST(GroupAdvantages, DrGrpoScalings) {
  const std::vector<float> r{1, 0, 0, 1, 2, 2, 2, 2, 0, 0, 0, 4};
  // none: centred only. Group 0 -> [0.5, -0.5, -0.5, 0.5], group 1 -> 0, group 2 -> [-1, -1, -1, 3].
  const auto none = scaled_group_advantages(r, 3, 4, "none");
  const float want_none[] = {0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0, -1, -1, -1, 3};
  for (int i = 0; i < 12; ++i) EXPECT_FLOAT_EQ(none[i], want_none[i]) << i;
  // batch: centred per group, divided by the population std of all 12 returns (mean 14/12).
  double mean = 14.0 / 12, var = 0;
  for (float x : r) var += (x - mean) * (x - mean);
  const double sd = std::sqrt(var / 12);
  const auto batch = scaled_group_advantages(r, 3, 4, "batch");
  for (int i = 0; i < 12; ++i) EXPECT_NEAR(batch[i], want_none[i] / sd, 1e-6) << i;
  // group: the GRPO scaling above.
  EXPECT_EQ(scaled_group_advantages(r, 3, 4, "group"), group_advantages(r, 3, 4));
  // A group whose returns differ only by a tiny cost: GRPO blows it up to +-1, Dr. GRPO keeps it tiny.
  const std::vector<float> tiny{0.9f, 0.9001f};
  EXPECT_NEAR(group_advantages(tiny, 1, 2)[1], 1.0, 1e-3);
  EXPECT_NEAR(scaled_group_advantages(tiny, 1, 2, "none")[1], 0.00005, 1e-6);
}

TEST(ExplainedVariance, HandComputed) {
  const float y[] = {1, 2, 3, 4};
  const float perfect[] = {1, 2, 3, 4};
  const float shifted[] = {2, 3, 4, 5};  // residual constant: variance 0 -> 1
  const float zero[] = {0, 0, 0, 0};      // residual = y -> 0
  EXPECT_DOUBLE_EQ(explained_variance(perfect, y, 4), 1.0);
  EXPECT_DOUBLE_EQ(explained_variance(shifted, y, 4), 1.0);
  EXPECT_DOUBLE_EQ(explained_variance(zero, y, 4), 0.0);
  const float flat[] = {2, 2, 2, 2};
  EXPECT_TRUE(std::isnan(explained_variance(zero, flat, 4)));
}

TEST(AnnealedLr, LinearFromFullToOneStepAboveZero) {
  EXPECT_DOUBLE_EQ(annealed_lr(1e-3, 1, 4), 1e-3);
  EXPECT_DOUBLE_EQ(annealed_lr(1e-3, 2, 4), 0.75e-3);
  EXPECT_DOUBLE_EQ(annealed_lr(1e-3, 4, 4), 0.25e-3);
}

}  // namespace
}  // namespace conductor
