// Budget mode lagrange end to end: the trainer adapts the cost multiplier between updates through the
// environment's adaptation hook, so the mean cost of the training episodes converges to the target
// (configs/budget.yaml on the embedded synthetic world), and the multiplier is part of the
// checkpoint, so a resumed run continues exactly.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "core/atomic_file.h"
#include "core/json_util.h"
#include "tests/test_util.h"
#include "tests/trainer/train_fixtures.h"
#include "trainer/train.h"

namespace conductor {
namespace {

using testing::metric_rows;

TrainResult train(ConfigDoc doc, const std::string& dir, int64_t stop_after = -1, bool resume = false) {
  return testing::train_quietly(std::move(doc), dir, stop_after, resume);
}

// While the integral term stays above 0 (I <- max(0, I + e)), the mean of the relative gap e over a
// window of N updates is (I_end - I_start) / N, so a short window is noise: with N = 10 one unit of I
// is 10% and the last-10 mean moved from 5.7% to 11.6% below the target between two machines with the
// same seed (the CI failure of 2026-12-01). Measured 2026-12-02, seeds 1-8, mean of the last 100 of
// 292 updates: -2.7%, +2.4%, -1.2%, +5.8%, -2.1%, +4.2%, -3.0%, +8.9% (last 10: -11.6% ... +18.6%);
// docs/environment.md "Budget mode". The tolerance stays 10%; a plain w_cost 2 run spends 5x the
// target. Plain dual ascent (lambda_kp 0) oscillated around it.
TEST(Budget, LagrangeRunConvergesToItsTargetMeanCost) {
  const std::string dir = testing::temp_dir() + "/run";
  ConfigDoc doc = ConfigDoc::load_file(std::string(CONDUCTOR_SOURCE_DIR) + "/configs/budget.yaml");
  doc.apply_overrides({"final_eval.enabled=false", "log.tensorboard=false", "log.console=false"});
  train(doc, dir);
  const auto rows = metric_rows(dir);
  ASSERT_GT(rows.size(), 200u);
  const double target = 0.001;
  const std::size_t window = 100;
  double tail_mean = 0;
  for (std::size_t i = rows.size() - window; i < rows.size(); ++i)
    tail_mean += rows[i]["charts/budget_mean_cost_usd"].get<double>() / window;
  EXPECT_NEAR(tail_mean, target, 0.1 * target) << "mean cost of the last " << window << " updates";
  // The first update spends about 5x the target (a near-uniform policy); the multiplier rose and stayed.
  EXPECT_GT(rows.front()["charts/budget_mean_cost_usd"].get<double>(), 3 * target);
  EXPECT_GT(rows.back()["charts/budget_lambda"].get<double>(), 5.0);
}

TEST(Budget, MultiplierIsCheckpointedAndResumedExactly) {
  const std::string base = testing::temp_dir();
  auto doc = [] {
    ConfigDoc d = ConfigDoc::load_file(std::string(CONDUCTOR_SOURCE_DIR) + "/configs/budget.yaml");
    d.apply_overrides({"final_eval.enabled=false", "log.tensorboard=false", "log.console=false",
                       "total_steps=40960", "env.synthetic.queries=800", "checkpoint_every=5"});
    return d;
  };
  train(doc(), base + "/whole");
  train(doc(), base + "/split", /*stop_after=*/7);
  const auto part = metric_rows(base + "/split");
  ASSERT_EQ(part.size(), 7u);
  EXPECT_GT(part.back()["charts/budget_lambda"].get<double>(), 0.0);
  train(doc(), base + "/split", -1, /*resume=*/true);
  EXPECT_EQ(read_file(base + "/split/metrics.jsonl"), read_file(base + "/whole/metrics.jsonl"));
}

}  // namespace
}  // namespace conductor
