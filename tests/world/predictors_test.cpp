// Predictors and their metrics: AUC and Brier against hand-computed values, logistic regression on
// a problem with known structure, ridge and latency fits, and the replay/model/hybrid tables.
#include <gtest/gtest.h>

#include <cmath>

#include "core/random.h"
#include "world/outcome_model.h"
#include "world/predictors.h"
#include "world/reward.h"
#include "tests/envs/conductor_fixtures.h"
#include "traces/catalog.h"
#include "traces/synth.h"
#include <iostream>

namespace conductor {
namespace {

TEST(Metrics, AucByHand) {
  // Positives {0.8, 0.4}, negatives {0.6, 0.2, 0.4}: pairs won 1 + 1 + 1 (0.8 beats all three), then
  // 0.4 beats 0.2, ties 0.4 (1/2), loses to 0.6: (3 + 1.5) / 6 = 0.75.
  EXPECT_DOUBLE_EQ(roc_auc({0.8, 0.6, 0.4, 0.2, 0.4}, {1, 0, 1, 0, 0}), 0.75);
  EXPECT_DOUBLE_EQ(roc_auc({0.1, 0.9}, {0, 1}), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc({0.9, 0.1}, {0, 1}), 0.0);
  EXPECT_TRUE(std::isnan(roc_auc({0.5, 0.6}, {1, 1})));
}

TEST(Metrics, BrierAndLogLossByHand) {
  // ((0.9-1)^2 + (0.2-0)^2) / 2 = (0.01 + 0.04) / 2 = 0.025
  EXPECT_DOUBLE_EQ(brier_score({0.9, 0.2}, {1, 0}), 0.025);
  // -(log 0.5 + log 0.5) / 2 = log 2
  EXPECT_NEAR(log_loss({0.5, 0.5}, {1, 0}), std::log(2.0), 1e-15);
}

TEST(LogisticRegression, HighAucOnKnownStructure) {
  // y ~ Bernoulli(sigmoid(3 x0 - 2 x1 + 0.5)), x ~ N(0, 1)^5: the fitted model must rank held-out
  // points well (the Bayes AUC of this problem is about 0.9) and recover the weights' signs.
  Rng rng(11);
  auto sample = [&](int n, Eigen::MatrixXd& X, Eigen::VectorXd& y) {
    X.resize(n, 5);
    y.resize(n);
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < 5; ++j) X(i, j) = rng.normal();
      const double z = 3 * X(i, 0) - 2 * X(i, 1) + 0.5;
      y[i] = rng.bernoulli(1 / (1 + std::exp(-z))) ? 1.0 : 0.0;
    }
  };
  Eigen::MatrixXd X, Xt;
  Eigen::VectorXd y, yt;
  sample(2000, X, y);
  sample(2000, Xt, yt);
  LogisticRegression lr;
  lr.fit(X, y, 1.0);
  EXPECT_GT(lr.weights()[0], 2.0);
  EXPECT_LT(lr.weights()[1], -1.3);
  EXPECT_NEAR(lr.weights()[2], 0.0, 0.3);
  std::vector<double> p;
  std::vector<uint8_t> lab;
  for (int i = 0; i < Xt.rows(); ++i) {
    p.push_back(lr.predict(Eigen::VectorXd(Xt.row(i).transpose())));
    lab.push_back(yt[i] > 0.5);
  }
  EXPECT_GT(roc_auc(p, lab), 0.85);
}

TEST(RidgeRegression, RecoversALinearFunction) {
  Eigen::MatrixXd X(50, 2);
  Eigen::VectorXd y(50);
  for (int i = 0; i < 50; ++i) {
    X(i, 0) = i;
    X(i, 1) = (i * 7) % 11;
    y[i] = 2 * X(i, 0) - 3 * X(i, 1) + 5;
  }
  RidgeRegression r;
  r.fit(X, y, 0.0);
  EXPECT_NEAR(r.predict(Eigen::Vector2d(10, 4)), 2 * 10 - 3 * 4 + 5, 1e-8);
}

TEST(WorldPredictors, LatencyFitRecoversIntercept) {
  // tiny_world latency = 0.2 + 0.1 m + tokens / (60 - 10 m): exactly linear in tokens.
  const TraceSet t = testing::tiny_world();
  const QueryFeaturizer f = QueryFeaturizer::for_traces(FeaturizerConfig{}, t);
  const auto x = f.featurize_all(t);
  const WorldPredictors p = WorldPredictors::fit(t, x, f.dim(), Split::kTrain, PredictorConfig{});
  for (int m = 0; m < 4; ++m) {
    EXPECT_TRUE(p.latency(m).fitted);
    EXPECT_NEAR(p.latency(m).intercept_s, 0.2 + 0.1 * m, 1e-4) << m;
    EXPECT_NEAR(p.latency(m).per_token_s, 1.0 / (60.0 - 10 * m), 1e-6) << m;
    EXPECT_LT(p.latency(m).log_sigma, 1e-4);
  }
  const json report = p.evaluate(t, x, f.dim(), Split::kTest);
  ASSERT_EQ(report["workers"].size(), 4u);
  EXPECT_EQ(report["workers"][0]["worker"], "w0");
  EXPECT_EQ(report["workers"][0]["heldout_rows"], 20);
}

TEST(WorldPredictors, PriorWhenNoLatencyIsLogged) {
  const TraceSet t = testing::tiny_world(60, /*with_latency=*/false);
  const QueryFeaturizer f = QueryFeaturizer::for_traces(FeaturizerConfig{}, t);
  const auto x = f.featurize_all(t);
  PredictorConfig c;
  c.latency_prior.ttft_s = 0.7;
  c.latency_prior.tokens_per_s = 40;
  c.latency_prior.log_sigma = 0;
  const WorldPredictors p = WorldPredictors::fit(t, x, f.dim(), Split::kTrain, c);
  EXPECT_FALSE(p.latency(2).fitted);
  EXPECT_DOUBLE_EQ(p.latency(2).mean(80), 0.7 + 80 / 40.0);
  // Replay fills the missing latency with the model mean for the logged tokens, keeps the rest.
  const OutcomeTable o = build_outcomes(t, x, f.dim(), RewardModelKind::kReplay, &p, 0);
  const std::size_t k = t.at(5, 2);
  EXPECT_FLOAT_EQ(o.latency_s[k], static_cast<float>(0.7 + t.output_tokens[k] / 40.0));
  EXPECT_EQ(o.quality[k], t.quality[k]);
  EXPECT_EQ(o.cost_usd[k], t.cost_usd[k]);
  EXPECT_THROW(build_outcomes(t, x, f.dim(), RewardModelKind::kReplay, nullptr, 0), Error);
}

TEST(OutcomeModel, ReplayHybridAndModel) {
  TraceSet t = testing::tiny_world();
  const std::size_t hole = t.at(7, 1);
  t.quality[hole] = kMissingF;
  t.cost_usd[hole] = kMissingD;
  const QueryFeaturizer f = QueryFeaturizer::for_traces(FeaturizerConfig{}, t);
  const auto x = f.featurize_all(t);
  const WorldPredictors p = WorldPredictors::fit(t, x, f.dim(), Split::kTrain, PredictorConfig{});
  const OutcomeTable replay = build_outcomes(t, x, f.dim(), RewardModelKind::kReplay, &p, 0);
  const OutcomeTable hybrid = build_outcomes(t, x, f.dim(), RewardModelKind::kHybrid, &p, 0);
  const OutcomeTable model = build_outcomes(t, x, f.dim(), RewardModelKind::kModel, &p, 0);
  EXPECT_EQ(replay.available[hole], 0);
  EXPECT_EQ(hybrid.available[hole], 1);
  EXPECT_EQ(hybrid.predicted[hole], 1);
  EXPECT_TRUE(hybrid.quality[hole] == 0.f || hybrid.quality[hole] == 1.f);  // binary worker: a draw
  std::size_t predicted = 0;
  for (std::size_t k = 0; k < t.quality.size(); ++k) {
    if (k == hole) continue;
    EXPECT_EQ(hybrid.quality[k], t.quality[k]);
    EXPECT_EQ(hybrid.cost_usd[k], t.cost_usd[k]);
    EXPECT_EQ(replay.latency_s[k], t.latency_s[k]);
    predicted += model.predicted[k];
  }
  EXPECT_EQ(predicted, t.quality.size() - 1);
  // A predicted correct answer takes the query's logged correct answer id.
  for (std::size_t k = 0; k < t.quality.size(); ++k)
    if (model.quality[k] == 1.f && model.answer[k] >= 0) EXPECT_EQ(model.answer[k], 0);
}

TEST(Reward, CompositeByHand) {
  RewardConfig r;
  r.w_quality = 2;
  r.w_cost = 100;
  r.w_latency = 0.1;
  r.no_answer_penalty = 0.5;
  // 2*1 - (100 + 10)*0.01 - 0.1*3 = 2 - 1.1 - 0.3 = 0.6
  EXPECT_NEAR(r.compute(1.0, 0.01, 3.0, true, 10.0), 0.6, 1e-12);
  // no answer: 0 - 100*0 - 0.1*30 - 0.5 = -3.5
  EXPECT_NEAR(r.compute(0.0, 0.0, 30.0, false, 0.0), -3.5, 1e-12);
}

}  // namespace
}  // namespace conductor

namespace conductor {
namespace {

// The synthetic world has known structure (2PL item response with a difficulty cue in the text and a
// per-domain skill, traces/synth.h): the fitted quality predictors must rank held-out calls well.
TEST(WorldPredictors, HighAucOnTheSyntheticWorld) {
  SynthConfig sc;
  sc.queries = 2000;
  sc.seed = 3;
  const TraceSet t = synthesize(sc, default_catalog());
  FeaturizerConfig fc;
  fc.hash_dim = 128;
  const QueryFeaturizer f = QueryFeaturizer::for_traces(fc, t);
  const auto x = f.featurize_all(t);
  const WorldPredictors p = WorldPredictors::fit(t, x, f.dim(), Split::kTrain, PredictorConfig{});
  const json eval = p.evaluate(t, x, f.dim(), Split::kTest);
  double mean = 0;
  for (const json& w : eval["workers"]) {
    EXPECT_GT(w["auc"].get<double>(), 0.55) << w["worker"];  // measured 0.58 .. 0.8 (seed 3)
    mean += w["auc"].get<double>();
  }
  mean /= eval["workers"].size();
  EXPECT_GT(mean, 0.68);  // measured 0.713 (seed 3); 5000 queries give 0.72 .. 0.80
  std::cout << "mean held-out AUC on the synthetic world: " << mean << "\n";
}

}  // namespace
}  // namespace conductor
