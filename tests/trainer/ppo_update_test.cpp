// One PPO update (trainer/ppo.cpp, through the Algorithm interface) on a fixed batch, against losses
// and gradients computed by hand in double precision from the equations (Schulman et al. 2017, as
// CleanRL's ppo.py implements them): a linear policy and value function, one epoch, one minibatch.
//
// For logits z = W x + b and allowed actions S (the mask), pi = softmax(z over S):
//   d log pi(a) / dz_j = [j == a] - pi_j
//   d H / dz_j = -pi_j (log pi_j + H)                                   (H = -sum_S pi log pi)
//   surrogate per row: max(-A r, -A clip(r, 1 - e, 1 + e)), r = exp(log pi(a) - log pi_old(a)),
//     d/dz = -A r (onehot(a) - pi) unless the clipped branch is the larger one with r outside the
//     clip range (then 0); at r inside the range both branches are equal and torch splits the
//     gradient half and half, which sums to the unclipped gradient.
//   value per row: 0.5 max((v - R)^2, (v_old + clip(v - v_old, -e, e) - R)^2), the same rule.
// Advantages are normalized over the minibatch with the unbiased standard deviation (+1e-8).
#include <gtest/gtest.h>

#include <cmath>

#include "policies/actor_critic.h"
#include "trainer/algorithm.h"

namespace conductor {
namespace {

constexpr int D = 2, A = 3, B = 4;
constexpr double kClip = 0.2, kEnt = 0.01, kVf = 0.5, kLr = 0.01, kEps = 1e-5;

struct Batch {
  double x[B][D] = {{0.5, -1.0}, {1.0, 0.25}, {-0.75, 0.5}, {0.2, 0.9}};
  uint8_t mask[B][A] = {{1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 0, 1}};
  int64_t act[B] = {0, 2, 1, 2};
  double ratio_target[B] = {1.05, 1.6, 0.5, 0.9};  // in range, above, below, in range
  double adv[B] = {0.7, 1.3, 0.9, -1.1};  // row 2: below the range but unclipped (A > 0)
  double ret[B] = {0.3, -0.2, 1.1, 0.0};
  double old_v_shift[B] = {0.05, 0.6, -0.5, 0.1};  // v_old = v - shift: two rows clip the value
};

const double W[A][D] = {{0.3, -0.2}, {-0.5, 0.4}, {0.1, 0.25}};
const double bW[A] = {0.05, -0.1, 0.2};
const double Wv[D] = {0.6, -0.3};
const double bv = 0.1;

TEST(PpoUpdate, LossesAndGradientsOfOneMinibatchEqualTheHandComputedOnes) {
  const Batch in;
  ConfigDoc doc = ConfigDoc::load_string(
      "env: {id: bandit, num_envs: 4}\npolicy: {hidden: []}\n"
      "ppo: {num_steps: 1, num_minibatches: 1, update_epochs: 1, learning_rate: 0.01, clip_coef: 0.2, "
      "ent_coef: 0.01, vf_coef: 0.5, max_grad_norm: 0, norm_adv: true, clip_vloss: true}\ntotal_steps: 4\n",
      "ppo-test.yaml");
  TrainerState s;
  s.cfg = RunConfig::parse(doc.root());
  auto model = std::make_unique<MlpModel>(MlpSpec{D, A, {}, "tanh"});
  {
    torch::NoGradGuard ng;
    auto p = model->module()->named_parameters();
    for (int a = 0; a < A; ++a) {
      for (int d = 0; d < D; ++d) p["actor.0.weight"][a][d] = W[a][d];
      p["actor.0.bias"][a] = bW[a];
    }
    for (int d = 0; d < D; ++d) p["critic.0.weight"][0][d] = Wv[d];
    p["critic.0.bias"][0] = bv;
  }
  s.model = std::move(model);
  s.optimizer = std::make_unique<torch::optim::Adam>(s.model->parameters(), torch::optim::AdamOptions(kLr).eps(kEps));
  s.rng.reseed(1);

  // ---- the hand computation (double precision, no torch) ----
  double z[B][A], pi[B][A], logpi[B][A], H[B], v[B], old_lp[B], old_v[B];
  for (int i = 0; i < B; ++i) {
    double mx = -1e300, zs = 0;
    for (int a = 0; a < A; ++a) {
      z[i][a] = bW[a] + W[a][0] * in.x[i][0] + W[a][1] * in.x[i][1];
      if (in.mask[i][a]) mx = std::max(mx, z[i][a]);
    }
    for (int a = 0; a < A; ++a) zs += in.mask[i][a] ? std::exp(z[i][a] - mx) : 0.0;
    H[i] = 0;
    for (int a = 0; a < A; ++a) {
      pi[i][a] = in.mask[i][a] ? std::exp(z[i][a] - mx) / zs : 0.0;
      logpi[i][a] = in.mask[i][a] ? z[i][a] - mx - std::log(zs) : -INFINITY;
      if (in.mask[i][a]) H[i] -= pi[i][a] * logpi[i][a];
    }
    v[i] = bv + Wv[0] * in.x[i][0] + Wv[1] * in.x[i][1];
    old_lp[i] = logpi[i][in.act[i]] - std::log(in.ratio_target[i]);
    old_v[i] = v[i] - in.old_v_shift[i];
  }
  double mean_adv = 0, sd = 0;
  for (double a : in.adv) mean_adv += a / B;
  for (double a : in.adv) sd += (a - mean_adv) * (a - mean_adv) / (B - 1);
  sd = std::sqrt(sd);
  double pg = 0, vl = 0, ent = 0, kl = 0, clipfrac = 0;
  double dz[B][A] = {}, dv[B] = {};
  int clipped_rows = 0, clipped_values = 0;
  for (int i = 0; i < B; ++i) {
    const double An = (in.adv[i] - mean_adv) / (sd + 1e-8);
    const double lr = logpi[i][in.act[i]] - old_lp[i], r = std::exp(lr);
    const double rc = std::min(std::max(r, 1 - kClip), 1 + kClip);
    const double pg1 = -An * r, pg2 = -An * rc;
    pg += std::max(pg1, pg2) / B;
    kl += ((r - 1) - lr) / B;
    clipfrac += (std::fabs(r - 1) > kClip ? 1.0 : 0.0) / B;
    const bool zero_grad = pg2 > pg1 && rc != r;
    clipped_rows += zero_grad;
    for (int a = 0; a < A; ++a) {
      if (!in.mask[i][a]) continue;
      const double dlogp = (a == in.act[i] ? 1.0 : 0.0) - pi[i][a];
      if (!zero_grad) dz[i][a] += -An * r * dlogp / B;
      dz[i][a] += -kEnt * (-pi[i][a] * (logpi[i][a] + H[i])) / B;  // d(-ent_coef * mean H)
    }
    ent += H[i] / B;
    const double vc = old_v[i] + std::min(std::max(v[i] - old_v[i], -kClip), kClip);
    const double u1 = (v[i] - in.ret[i]) * (v[i] - in.ret[i]), u2 = (vc - in.ret[i]) * (vc - in.ret[i]);
    vl += 0.5 * std::max(u1, u2) / B;
    const bool value_clipped = vc != v[i];
    clipped_values += value_clipped;
    const double dvl = u2 > u1 ? (value_clipped ? 0.0 : 2 * (vc - in.ret[i])) : 2 * (v[i] - in.ret[i]);
    dv[i] = kVf * 0.5 * dvl / B;
  }
  ASSERT_EQ(clipped_rows, 1) << "the batch must exercise the clipped surrogate branch";
  ASSERT_EQ(clipped_values, 2) << "the batch must exercise the clipped value loss";

  // ---- the buffer and the update ----
  RolloutBuffer buf;
  buf.n_actions = A;
  buf.obs.dense_dim = D;
  for (int i = 0; i < B; ++i) {
    for (int d = 0; d < D; ++d) buf.obs.dense.push_back(static_cast<float>(in.x[i][d]));
    for (int a = 0; a < A; ++a) buf.masks.push_back(in.mask[i][a]);
    buf.actions.push_back(in.act[i]);
    buf.log_probs.push_back(static_cast<float>(old_lp[i]));
    buf.values.push_back(static_cast<float>(old_v[i]));
    buf.advantages.push_back(static_cast<float>(in.adv[i]));
    buf.returns.push_back(static_cast<float>(in.ret[i]));
  }
  buf.obs.rows = B;
  auto ppo = make_algorithm(s.cfg);
  Metrics m;
  s.update = 1;
  ppo->train(s, buf, m);

  EXPECT_NEAR(m.get("losses/policy_loss"), pg, 1e-6);
  EXPECT_NEAR(m.get("losses/value_loss"), vl, 1e-6);
  EXPECT_NEAR(m.get("losses/entropy"), ent, 1e-6);
  EXPECT_NEAR(m.get("losses/approx_kl"), kl, 1e-6);
  EXPECT_NEAR(m.get("losses/clipfrac"), clipfrac, 1e-9);
  EXPECT_EQ(m.get("losses/minibatches"), 1.0);
  EXPECT_EQ(m.get("losses/epochs"), 1.0);

  // Gradients (left in .grad() by the step) against the chain rule through z = W x + b, v = w x + c.
  auto p = s.model->parameters();  // critic.0.weight, critic.0.bias, actor.0.weight, actor.0.bias
  auto named = static_cast<MlpModel&>(*s.model).module()->named_parameters();
  double gn2 = 0;
  for (int a = 0; a < A; ++a) {
    for (int d = 0; d < D; ++d) {
      double g = 0;
      for (int i = 0; i < B; ++i) g += dz[i][a] * in.x[i][d];
      EXPECT_NEAR(named["actor.0.weight"].grad()[a][d].item<double>(), g, 1e-6) << "W[" << a << "][" << d << "]";
      gn2 += g * g;
      // Adam's first step moves every parameter by lr * g / (|g| + eps) against the gradient.
      EXPECT_NEAR(named["actor.0.weight"][a][d].item<double>(), W[a][d] - kLr * g / (std::fabs(g) + kEps), 1e-6);
    }
    double gb = 0;
    for (int i = 0; i < B; ++i) gb += dz[i][a];
    EXPECT_NEAR(named["actor.0.bias"].grad()[a].item<double>(), gb, 1e-6) << "b[" << a << "]";
    gn2 += gb * gb;
  }
  for (int d = 0; d < D; ++d) {
    double g = 0;
    for (int i = 0; i < B; ++i) g += dv[i] * in.x[i][d];
    EXPECT_NEAR(named["critic.0.weight"].grad()[0][d].item<double>(), g, 1e-6) << "w[" << d << "]";
    gn2 += g * g;
  }
  double gc = 0;
  for (int i = 0; i < B; ++i) gc += dv[i];
  EXPECT_NEAR(named["critic.0.bias"].grad()[0].item<double>(), gc, 1e-6);
  gn2 += gc * gc;
  EXPECT_NEAR(m.get("losses/grad_norm"), std::sqrt(gn2), 1e-6);
  EXPECT_EQ(p.size(), 4u);
}

// Target-KL early stop: with a target far below the first minibatch's KL, the update stops before
// any optimizer step (SB3's rule: approx_kl > 1.5 * target_kl), and the weights do not move.
TEST(PpoUpdate, TargetKlStopsBeforeSteppingAndLeavesTheWeights) {
  ConfigDoc doc = ConfigDoc::load_string(
      "env: {id: bandit, num_envs: 4}\npolicy: {hidden: [4]}\n"
      "ppo: {num_steps: 1, num_minibatches: 2, update_epochs: 3, target_kl: 0.0001}\ntotal_steps: 4\n",
      "ppo-test.yaml");
  TrainerState s;
  s.cfg = RunConfig::parse(doc.root());
  torch::manual_seed(3);
  s.model = std::make_unique<MlpModel>(MlpSpec{D, A, {4}, "tanh"});
  s.optimizer = std::make_unique<torch::optim::Adam>(s.model->parameters(), torch::optim::AdamOptions(0.1));
  RolloutBuffer buf;
  buf.n_actions = A;
  buf.obs.dense_dim = D;
  buf.obs.dense = {0.1f, 0.2f, -0.3f, 0.4f, 0.5f, -0.6f, 0.7f, 0.8f};
  buf.obs.rows = 4;
  buf.masks.assign(12, 1);
  buf.actions = {0, 1, 2, 0};
  buf.log_probs = {-3.f, -3.f, -3.f, -3.f};  // far from the policy's log-probs: large KL
  buf.values = {0, 0, 0, 0};
  buf.advantages = {1, -1, 1, -1};
  buf.returns = {1, 1, 1, 1};
  std::vector<torch::Tensor> before;
  for (const auto& t : s.model->parameters()) before.push_back(t.detach().clone());
  Metrics m;
  make_algorithm(s.cfg)->train(s, buf, m);
  EXPECT_EQ(m.get("losses/minibatches"), 0.0);
  EXPECT_EQ(m.get("losses/epochs"), 0.0);
  const auto after = s.model->parameters();
  for (std::size_t k = 0; k < before.size(); ++k) EXPECT_TRUE(torch::equal(before[k], after[k]));
}

}  // namespace
}  // namespace conductor
