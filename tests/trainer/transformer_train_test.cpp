// The transformer conductor through the same trainer as the MLP (policy.kind: transformer from
// YAML): PPO with frozen lower layers resumes exactly, GRPO and a BC warm start with a LoRA policy
// and a KL reference run, and the final checkpoint loads as an inference policy. Tiny model, tiny
// world, the checked-in 1024-id tokenizer fixture: seconds each.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <sstream>

#include "core/atomic_file.h"
#include "core/json_util.h"
#include "policies/registry.h"
#include "tests/test_util.h"
#include "tests/trainer/train_fixtures.h"
#include "trainer/train.h"

namespace conductor {
namespace {

using testing::metric_rows;

TrainResult train(ConfigDoc doc, const std::string& dir, int64_t stop_after = -1, bool resume = false) {
  return testing::train_quietly(std::move(doc), dir, stop_after, resume);
}

ConfigDoc config(const std::string& policy_extra, const std::string& algo_yaml) {
  const std::string yaml = R"(seed: 3
env:
  id: conductor
  num_envs: 4
  synthetic: {queries: 120, seed: 2}
  split: train
  max_steps: 2
  reward: {w_quality: 1.0, w_cost: 30.0}
policy:
  kind: transformer
  model: tiny
  tokenizer: )" + std::string(CONDUCTOR_SOURCE_DIR) +
                           "/tests/tokenizer/fixture/tokenizer.json\n  max_prompt_tokens: 320\n" + policy_extra + algo_yaml +
                           R"(
checkpoint_every: 1
log: {tensorboard: false, console: false}
final_eval: {enabled: false}
)";
  return ConfigDoc::load_string(yaml, "transformer-test.yaml");
}

const char* kPpo = R"(algo: ppo
ppo: {num_steps: 6, learning_rate: 0.001, num_minibatches: 2, update_epochs: 2}
total_steps: 96
)";

TEST(TransformerTraining, PpoWithFrozenLayersResumesExactly) {
  const std::string base = testing::temp_dir();
  const std::string top = "  train_top_layers: 1\n";
  train(config(top, kPpo), base + "/whole");
  const auto whole = metric_rows(base + "/whole");
  ASSERT_EQ(whole.size(), 4u);
  for (const auto& r : whole) {
    EXPECT_TRUE(std::isfinite(r["losses/policy_loss"].get<double>()));
    EXPECT_TRUE(std::isfinite(r["losses/value_loss"].get<double>()));
  }
  // The policy moved: after the first update, the old/new log-probability ratio is not all ones.
  EXPECT_GT(whole.back()["losses/approx_kl"].get<double>(), 0.0);
  train(config(top, kPpo), base + "/split", /*stop_after=*/2);
  ASSERT_EQ(metric_rows(base + "/split").size(), 2u);
  train(config(top, kPpo), base + "/split", -1, /*resume=*/true);
  EXPECT_EQ(read_file(base + "/split/metrics.jsonl"), read_file(base + "/whole/metrics.jsonl"));
  // The checkpoint is an inference policy of kind transformer.
  auto policy = load_policy(base + "/whole");
  EXPECT_EQ(policy->kind(), "transformer");
}

TEST(TransformerTraining, GrpoAndBcWarmStartWithLoraAndKlReference) {
  const std::string base = testing::temp_dir();
  const std::string lora = "  lora: {enabled: true, r: 2, alpha: 4}\n";
  train(config(lora, R"(algo: grpo
grpo: {group_size: 4, learning_rate: 0.001, kl_coef: 0.05, update_epochs: 1}
total_steps: 32
)"),
        base + "/grpo");
  const auto g = metric_rows(base + "/grpo");
  ASSERT_FALSE(g.empty());
  for (const auto& r : g)
    for (const auto& [k, v] : r.items()) {
      if (v.is_number()) EXPECT_TRUE(std::isfinite(v.get<double>())) << k;
    }
  train(config(lora, std::string(kPpo) + "bc_warmstart: {enabled: true, samples: 32, epochs: 1}\n"),
        base + "/bc");
  const auto bc = metric_rows(base + "/bc");
  ASSERT_EQ(bc.size(), 5u);  // the warm start's row (update 0), then 4 PPO updates
  EXPECT_EQ(bc.front()["update"].get<int>(), 0);
  for (const auto& [k, v] : bc.front().items())
    if (v.is_number()) EXPECT_TRUE(std::isfinite(v.get<double>())) << k;
}

}  // namespace
}  // namespace conductor
