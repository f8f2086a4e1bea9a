// MLP actor-critic: CleanRL initialization, masked distribution, torch-free policy parity, loading.
#include <gtest/gtest.h>

#include <cmath>

#include "core/random.h"
#include "policies/actor_critic.h"
#include "policies/mlp.h"
#include "tests/test_util.h"

namespace conductor {
namespace {

MlpSpec spec(int obs, int act, std::vector<int> hidden = {64, 64}) {
  MlpSpec s;
  s.obs_dim = obs;
  s.n_actions = act;
  s.hidden = std::move(hidden);
  return s;
}

TEST(ActorCritic, OrthogonalInitAsCleanRL) {
  torch::manual_seed(0);
  ActorCritic m(spec(4, 3));
  // Layer shapes: actor.0 [64x4], actor.2 [64x64], actor.4 [3x64]; critic.4 [1x64].
  auto p = m->named_parameters();
  ASSERT_TRUE(p.contains("actor.0.weight"));
  EXPECT_EQ(p["actor.0.weight"].sizes(), (std::vector<int64_t>{64, 4}));
  EXPECT_EQ(p["actor.4.weight"].sizes(), (std::vector<int64_t>{3, 64}));
  EXPECT_EQ(p["critic.4.weight"].sizes(), (std::vector<int64_t>{1, 64}));
  // Orthogonal with gain g: for a tall W [out > in], W^T W = g^2 I; for a wide W, W W^T = g^2 I.
  auto check = [](const torch::Tensor& w, double gain) {
    const bool tall = w.size(0) >= w.size(1);
    const auto gram = tall ? w.t().mm(w) : w.mm(w.t());
    const auto eye = torch::eye(gram.size(0)) * gain * gain;
    EXPECT_LT((gram - eye).abs().max().item<double>(), 1e-4 * std::max(1.0, gain * gain));
  };
  check(p["actor.0.weight"], std::sqrt(2.0));
  check(p["actor.2.weight"], std::sqrt(2.0));
  check(p["actor.4.weight"], 0.01);
  check(p["critic.0.weight"], std::sqrt(2.0));
  check(p["critic.4.weight"], 1.0);
  for (const auto& kv : p)
    if (kv.key().find("bias") != std::string::npos) EXPECT_EQ(kv.value().abs().max().item<double>(), 0.0);
}

TEST(MaskedDistribution, MaskedActionsHaveProbabilityZeroAndLogProbMinusInfinity) {
  const auto logits = torch::tensor({{5.0f, 1.0f, 30.0f, -2.0f}, {0.0f, 0.0f, 0.0f, 0.0f}});
  const auto mask = torch::tensor({{1, 1, 0, 1}, {0, 1, 0, 0}}).to(torch::kBool);
  const auto lp = masked_log_probs(logits, mask);
  EXPECT_TRUE(std::isinf(lp[0][2].item<float>()) && lp[0][2].item<float>() < 0);
  EXPECT_EQ(lp.exp()[0][2].item<float>(), 0.0f);
  EXPECT_EQ(lp[1][1].item<float>(), 0.0f);  // the only allowed action: log 1
  // Row 0: softmax over {5, 1, -2}.
  const double z = std::exp(5.0) + std::exp(1.0) + std::exp(-2.0);
  EXPECT_NEAR(lp[0][0].item<float>(), 5.0 - std::log(z), 1e-5);
  const auto ent = masked_entropy(lp);
  EXPECT_TRUE(torch::isfinite(ent).all().item<bool>());
  EXPECT_NEAR(ent[1].item<float>(), 0.0, 1e-7);
  double h = 0;
  for (double l : {5.0, 1.0, -2.0}) h -= std::exp(l) / z * (l - std::log(z));
  EXPECT_NEAR(ent[0].item<float>(), h, 1e-5);
  // Gradients through masked rows stay finite.
  auto x = logits.clone().requires_grad_(true);
  auto l2 = masked_log_probs(x, mask);
  (l2.gather(1, torch::tensor({{0}, {1}})).sum() + masked_entropy(l2).sum()).backward();
  EXPECT_TRUE(torch::isfinite(x.grad()).all().item<bool>());
}

TEST(MaskedDistribution, MaskedActionIsNeverSampled) {
  // The masked action has by far the largest logit; 200k draws never pick it.
  const float probs[4] = {0.25f, 0.f, 0.5f, 0.25f};
  const uint8_t mask[4] = {1, 0, 1, 1};
  Rng rng(3);
  int counts[4] = {0, 0, 0, 0};
  for (int i = 0; i < 200000; ++i) ++counts[sample_masked(probs, mask, 4, rng.uniform())];
  EXPECT_EQ(counts[1], 0);
  EXPECT_NEAR(counts[2] / 200000.0, 0.5, 0.01);
  // Edge: u -> 1 returns the last allowed action with positive probability, not a masked one.
  const uint8_t mask2[4] = {1, 1, 1, 0};
  const float probs2[4] = {0.5f, 0.5f, 0.f, 0.f};
  EXPECT_EQ(sample_masked(probs2, mask2, 4, 0.9999999999), 1);

  torch::manual_seed(1);
  auto m = ActorCritic(spec(3, 4, {8}));
  {
    torch::NoGradGuard ng;
    m->actor[2]->as<torch::nn::Linear>()->bias[1] = 50.0;  // action 1 would win if allowed
  }
  auto policy = make_mlp_policy(m->spec(), named_tensors(m));
  std::vector<float> obs(3 * 500);
  std::vector<uint8_t> masks(4 * 500, 1);
  for (int i = 0; i < 500; ++i) masks[i * 4 + 1] = 0;
  Rng r2(5);
  for (auto& v : obs) v = static_cast<float>(r2.normal());
  std::vector<int32_t> acts(500);
  std::vector<float> pr(4 * 500);
  policy->act(dense_batch(obs.data(), masks.data(), 500, 3, 4), ActOptions{false, 42}, acts.data(), pr.data());
  for (int i = 0; i < 500; ++i) {
    EXPECT_NE(acts[i], 1);
    EXPECT_EQ(pr[i * 4 + 1], 0.f);
  }
}

TEST(MlpPolicy, MatchesTheTorchModuleAndIsDeterministic) {
  torch::manual_seed(7);
  ActorCritic m(spec(5, 6, {16, 8}));
  {  // make the logits non-trivial (the CleanRL head starts near uniform)
    torch::NoGradGuard ng;
    for (auto& p : m->parameters()) p.add_(torch::randn(p.sizes()) * 0.3);
  }
  auto policy = make_mlp_policy(m->spec(), named_tensors(m));
  const int n = 32;
  const auto obs = torch::randn({n, 5});
  auto mask = (torch::rand({n, 6}) > 0.3);
  mask.select(1, 0).fill_(true);
  const auto mask_u8 = mask.to(torch::kUInt8).contiguous();
  std::vector<int32_t> a(n), g(n), a2(n);
  std::vector<float> probs(n * 6);
  const ObsBatch batch = dense_batch(obs.data_ptr<float>(), mask_u8.data_ptr<uint8_t>(), n, 5, 6);
  policy->act(batch, ActOptions{false, 9}, a.data(), probs.data());
  policy->act(batch, ActOptions{false, 9}, a2.data(), nullptr);
  policy->act(batch, ActOptions{true, 0}, g.data(), nullptr);
  EXPECT_EQ(a, a2);
  torch::NoGradGuard ng;
  const auto ref = masked_log_probs(m->logits(obs), mask).exp();
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < 6; ++k) EXPECT_NEAR(probs[i * 6 + k], ref[i][k].item<float>(), 1e-5);
    EXPECT_EQ(g[i], ref[i].argmax().item<int64_t>());
    EXPECT_TRUE(mask[i][a[i]].item<bool>());
  }
  EXPECT_EQ(policy->needs().dense_dim, 5);
  EXPECT_FALSE(policy->needs().states);
  EXPECT_EQ(policy->n_actions(), 6);
  EXPECT_EQ(policy->kind(), "mlp");
}

TEST(MlpPolicy, LoadsFromACheckpointFolderAndRejectsBadTensors) {
  const std::string dir = testing::temp_dir();
  torch::manual_seed(3);
  MlpModel model(spec(4, 2, {8, 8}));
  model.save(dir);
  EXPECT_EQ(checkpoint_policy_kind(dir), "mlp");
  MlpModel back(spec(4, 2, {8, 8}));
  back.load(dir);
  const auto tensors = named_tensors(back.module());
  const auto mine = named_tensors(model.module());
  ASSERT_EQ(tensors.size(), mine.size());
  for (size_t i = 0; i < mine.size(); ++i) {
    EXPECT_EQ(tensors[i].name, mine[i].name);
    EXPECT_EQ(tensors[i].data, mine[i].data);
  }
  // A checkpoint of another shape is refused with both shapes in the message.
  MlpModel other(spec(4, 2, {8}));
  try {
    other.load(dir);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not match the config's"), std::string::npos) << e.what();
  }
  // The registry dispatches on policy.json's kind; the inference policy acts as the module.
  auto policy = load_policy(dir);
  EXPECT_EQ(policy->needs().dense_dim, 4);
  const MlpSpec s = spec(4, 2, {8, 8});

  auto wrong = mine;
  for (auto& t : wrong)
    if (t.name == "actor.0.weight") t.shape = {8, 5};
  try {
    make_mlp_policy(s, wrong);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has shape [8, 5], expected [8, 4]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_policy(dir + "/nope"), Error);
}

}  // namespace
}  // namespace conductor
