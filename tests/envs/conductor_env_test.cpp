// ConductorEnv: replay exactness, a cascade against the trace arrays, outages and re-routing,
// sequential passes, budget modes, config errors, the state-view seam and conformance.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <cmath>
#include <functional>
#include <map>

#include "core/config.h"
#include "envs/conductor_env.h"
#include "envs/conformance.h"
#include "envs/registry.h"
#include "tests/test_util.h"
#include "tests/envs/conductor_fixtures.h"
#include "traces/import_routerbench.h"
#include "traces/store.h"

namespace conductor {
namespace {

using testing::tiny_world;

std::shared_ptr<const TraceSet> shared_tiny() {
  static auto t = std::make_shared<const TraceSet>(tiny_world());
  return t;
}

ConductorEnvConfig parse_env(const std::string& yaml) {
  ConfigDoc doc = ConfigDoc::load_string(yaml, "env.yaml");
  ConfigReader r = doc.root();
  return ConductorEnvConfig::parse(r);
}

std::unique_ptr<ConductorEnv> make_env_from(const std::string& yaml, int num_envs,
                                            std::shared_ptr<const TraceSet> traces = shared_tiny()) {
  const ConductorEnvConfig c = parse_env(yaml);
  return std::make_unique<ConductorEnv>(c, ConductorWorld::build(c, traces), num_envs);
}

// The message of the error that building an environment from `yaml` throws ("" when none).
std::string error_of(const std::string& yaml) {
  try {
    make_env_from(yaml, 1);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Steps `env` with `policy(env, i)` until the sequential pass completes; returns pass-0 records
// sorted by query index.
template <class Policy>
std::vector<EpisodeRecord> run_pass(ConductorEnv& env, Policy policy) {
  std::vector<EpisodeRecord> out;
  std::vector<int32_t> a(env.num_envs());
  for (int guard = 0; guard < 100000 && !env.sequential_pass_complete(); ++guard) {
    for (int i = 0; i < env.num_envs(); ++i) a[i] = policy(env, i);
    env.step(a.data());
    for (const auto& r : env.finished())
      if (r.extras[ConductorEnv::kPass] == 0) out.push_back(r);
  }
  EXPECT_TRUE(env.sequential_pass_complete());
  std::sort(out.begin(), out.end(), [](const EpisodeRecord& x, const EpisodeRecord& y) {
    return x.extras[ConductorEnv::kQueryIndex] < y.extras[ConductorEnv::kQueryIndex];
  });
  return out;
}

// Done-when 1: always calling worker k once gives exactly the logged mean quality and cost of k
// over the test split (expected values summed directly from the trace arrays, in query order).
TEST(ConductorEnv, ReplayIsExactForEverySingleWorker) {
  const TraceSet& T = *shared_tiny();
  const std::vector<std::size_t> test = T.split_indices(Split::kTest);
  for (int max_steps : {1, 2}) {
    for (int k = 0; k < 4; ++k) {
      auto env = make_env_from("split: test\nmode: sequential\nmax_steps: " + std::to_string(max_steps), 7);
      const int finish_last = env->n_workers();  // finish:last is the first finish action
      auto records = run_pass(*env, [&](ConductorEnv& e, int i) {
        return e.state_view(i).n_steps == 0 ? k : finish_last;
      });
      ASSERT_EQ(records.size(), test.size());
      double q_env = 0, c_env = 0, q_log = 0, c_log = 0;
      for (std::size_t j = 0; j < test.size(); ++j) {
        ASSERT_EQ(records[j].extras[ConductorEnv::kQueryIndex], static_cast<double>(test[j]));
        EXPECT_EQ(records[j].extras[ConductorEnv::kCalls], 1.0);
        EXPECT_EQ(records[j].truncated, max_steps == 1);
        q_env += records[j].extras[ConductorEnv::kQuality];
        c_env += records[j].extras[ConductorEnv::kCostUsd];
        q_log += T.quality[T.at(test[j], k)];
        c_log += T.cost_usd[T.at(test[j], k)];
      }
      EXPECT_EQ(q_env / test.size(), q_log / test.size()) << "worker " << k << " max_steps " << max_steps;
      EXPECT_EQ(c_env / test.size(), c_log / test.size()) << "worker " << k << " max_steps " << max_steps;
    }
  }
}

// Done-when 2: the cascade "call A, call B, if they disagree call C, finish by vote" through the
// environment equals the same cascade computed from the arrays. With the vote's tie rule (the group
// holding the most recent call wins), the cascade answers B's answer when A and B agree, else C's.
TEST(ConductorEnv, CascadeMatchesDirectComputation) {
  const TraceSet& T = *shared_tiny();
  const int A = 0, B = 1, C = 3;
  auto env = make_env_from("split: test\nmode: sequential\nmax_steps: 4\nfinish_rules: [last, vote]\n", 5);
  const int vote = env->n_workers() + 1;
  auto records = run_pass(*env, [&](ConductorEnv& e, int i) {
    const ConductorStateView v = e.state_view(i);
    if (v.n_steps == 0) return A;
    if (v.n_steps == 1) return B;
    if (v.n_steps == 2 && v.steps[0].answer != v.steps[1].answer) return C;
    return vote;
  });
  const std::vector<std::size_t> test = T.split_indices(Split::kTest);
  ASSERT_EQ(records.size(), test.size());
  int escalated = 0;
  for (std::size_t j = 0; j < test.size(); ++j) {
    const std::size_t q = test[j];
    const std::size_t a = T.at(q, A), b = T.at(q, B), c = T.at(q, C);
    double quality = T.quality[b], cost = T.cost_usd[a] + T.cost_usd[b];
    double latency = static_cast<double>(T.latency_s[a]) + static_cast<double>(T.latency_s[b]);
    int calls = 2;
    if (T.answer[a] != T.answer[b]) {
      quality = T.quality[c];
      cost += T.cost_usd[c];
      latency += static_cast<double>(T.latency_s[c]);
      calls = 3;
      ++escalated;
    }
    EXPECT_EQ(records[j].extras[ConductorEnv::kQuality], quality) << "query " << q;
    EXPECT_EQ(records[j].extras[ConductorEnv::kCostUsd], cost) << "query " << q;
    EXPECT_EQ(records[j].extras[ConductorEnv::kLatencyS], latency) << "query " << q;
    EXPECT_EQ(records[j].extras[ConductorEnv::kCalls], calls) << "query " << q;
    EXPECT_FALSE(records[j].truncated);
  }
  EXPECT_GT(escalated, 0);                        // the test exercises both branches
  EXPECT_LT(escalated, static_cast<int>(test.size()));
}

int best_worker(const TraceSet& T) {
  int best = 0;
  double bq = -1;
  for (int m = 0; m < static_cast<int>(T.n_models()); ++m) {
    double s = 0;
    for (std::size_t q : T.split_indices(Split::kTrain)) s += T.quality[T.at(q, m)];
    if (s > bq) {
      bq = s;
      best = m;
    }
  }
  return best;
}

// Done-when 3: with the best worker in an outage, a call to it fails with the timeout latency and
// costs nothing, the mask then shows it unavailable, and re-routing yields the other worker's
// logged outcome. An announced outage removes it from the pool mask from the start.
TEST(ConductorEnv, OutageOfBestWorkerAndRerouting) {
  const TraceSet& T = *shared_tiny();
  const int best = best_worker(T);
  ASSERT_EQ(best, 3);
  const int other = 1;
  auto env = make_env_from(
      "split: test\nmode: sequential\nmax_steps: 3\n"
      "faults:\n  - {type: outage, worker: w3, start: 0, duration: 1000000, timeout_s: 12.5}\n",
      1);
  const ObsLayout& L = env->layout();
  const int A = env->spec().n_actions;
  for (int ep = 0; ep < 5; ++ep) {
    const int q = env->state_view(0).query;
    ASSERT_EQ(env->action_mask()[best], 1) << "an unannounced outage is not known before the call";
    int32_t a = best;
    env->step(&a);
    EXPECT_EQ(env->finished().size(), 0u);
    const ConductorStateView v = env->state_view(0);
    ASSERT_EQ(v.n_steps, 1);
    EXPECT_EQ(v.steps[0].error, kTimeout);
    EXPECT_EQ(v.steps[0].latency_s, 12.5f);
    EXPECT_EQ(v.steps[0].cost_usd, 0.0);
    EXPECT_EQ(env->action_mask()[best], 0) << "the failed worker is masked";
    EXPECT_EQ(env->obs()[L.mask + best], 0.f) << "and the mask in the observation shows it";
    EXPECT_EQ(env->obs()[L.history + env->n_workers()], 1.f) << "error flag of the first call";
    for (int r = 0; r < 3; ++r) EXPECT_EQ(env->action_mask()[env->n_workers() + r], 0) << "no answer yet: no FINISH";
    a = other;
    env->step(&a);
    a = env->n_workers();  // finish:last
    env->step(&a);
    ASSERT_EQ(env->finished().size(), 1u);
    const EpisodeRecord& rec = env->finished()[0];
    const std::size_t k = T.at(q, other);
    EXPECT_EQ(rec.extras[ConductorEnv::kQuality], T.quality[k]);
    EXPECT_EQ(rec.extras[ConductorEnv::kCostUsd], T.cost_usd[k]);
    EXPECT_EQ(rec.extras[ConductorEnv::kLatencyS], 12.5 + static_cast<double>(T.latency_s[k]));
    EXPECT_EQ(rec.extras[ConductorEnv::kFailedCalls], 1.0);
    (void)A;
  }
  auto announced = make_env_from(
      "split: test\nfaults:\n  - {type: outage, worker: w3, start: 0, duration: 10, announced: true}\n", 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(announced->action_mask()[i * announced->spec().n_actions + best], 0);
    EXPECT_EQ(announced->obs()[i * announced->spec().obs_dim + announced->layout().pool + best], 0.f);
    EXPECT_EQ(announced->obs()[i * announced->spec().obs_dim + announced->layout().pool + other], 1.f);
  }
}

TEST(ConductorEnv, OutageEndsAfterItsDuration) {
  auto env = make_env_from("faults:\n  - {type: outage, worker: w2, start: 2, duration: 3, announced: true}\n", 1);
  std::vector<int> masked;
  for (int ep = 0; ep < 7; ++ep) {
    masked.push_back(env->action_mask()[2] == 0);
    int32_t a = 0;
    env->step(&a);
    a = env->n_workers();
    env->step(&a);
  }
  EXPECT_EQ(masked, (std::vector<int>{0, 0, 1, 1, 1, 0, 0}));
}

TEST(ConductorEnv, PriceChangeScalesCostAndObservedPrice) {
  const TraceSet& T = *shared_tiny();
  auto env = make_env_from("max_steps: 1\nmode: sequential\nfaults:\n  - {type: price_change, worker: w1, factor: 2.5, at_episode: 1}\n", 1);
  const float p0 = env->obs()[env->layout().prices + 1];
  int32_t a = 1;
  int q = env->state_view(0).query;
  env->step(&a);
  EXPECT_EQ(env->finished()[0].extras[ConductorEnv::kCostUsd], T.cost_usd[T.at(q, 1)]);
  EXPECT_FLOAT_EQ(env->obs()[env->layout().prices + 1], 2.5f * p0);
  q = env->state_view(0).query;
  env->step(&a);
  EXPECT_DOUBLE_EQ(env->finished()[0].extras[ConductorEnv::kCostUsd], T.cost_usd[T.at(q, 1)] * 2.5);
}

// A scheduled price window: episodes [2, 4) pay factor 3 and observe it; before and after, list price.
TEST(ConductorEnv, PriceWindowScalesCostOnlyInsideTheWindow) {
  const TraceSet& T = *shared_tiny();
  auto env = make_env_from("max_steps: 1\nmode: sequential\nfaults:\n  - {type: price_change, worker: w1, factor: 3, start: 2, duration: 2}\n", 1);
  const float p0 = env->obs()[env->layout().prices + 1];
  for (int e = 0; e < 6; ++e) {
    const bool inside = e >= 2 && e < 4;
    EXPECT_FLOAT_EQ(env->obs()[env->layout().prices + 1], (inside ? 3.f : 1.f) * p0) << "episode " << e;
    const int q = env->state_view(0).query;
    int32_t a = 1;
    env->step(&a);
    EXPECT_DOUBLE_EQ(env->finished()[0].extras[ConductorEnv::kCostUsd], T.cost_usd[T.at(q, 1)] * (inside ? 3.0 : 1.0))
        << "episode " << e;
  }
  // A window and at_episode together are refused, naming the key.
  EXPECT_THROW(make_env_from("faults:\n  - {type: price_change, worker: w1, factor: 3, rate: 0.1, duration: 2, at_episode: 1}\n", 1),
               Error);
}

TEST(ConductorEnv, TaskMixShiftChangesSampledTasks) {
  const TraceSet& T = *shared_tiny();
  auto env = make_env_from("max_steps: 1\nfaults:\n  - {type: task_mix, at_episode: 10, weights: {math: 1}}\n", 4);
  std::vector<int32_t> a(4, 0);
  int before_trivia = 0, after_trivia = 0;
  for (int s = 0; s < 40; ++s) {
    for (int i = 0; i < 4; ++i) {
      const bool trivia = T.query_task[env->state_view(i).query] == "trivia";
      (s < 10 ? before_trivia : after_trivia) += trivia;
    }
    env->step(a.data());
  }
  EXPECT_GT(before_trivia, 0);
  EXPECT_EQ(after_trivia, 0);
}

TEST(ConductorEnv, TimeoutFaultsAreSeeded) {
  auto run = [](uint64_t seed) {
    auto env = make_env_from("max_steps: 1\nfaults:\n  - {type: timeout, worker: all, prob: 0.3, timeout_s: 9}\n", 8);
    env->reset(seed);
    std::vector<int32_t> a(8, 2);
    int failed = 0;
    for (int s = 0; s < 50; ++s) {
      env->step(a.data());
      for (const auto& r : env->finished()) {
        failed += r.extras[ConductorEnv::kFailedCalls] > 0;
        if (r.extras[ConductorEnv::kFailedCalls] > 0) {
          EXPECT_EQ(r.extras[ConductorEnv::kLatencyS], 9.0);
          EXPECT_EQ(r.extras[ConductorEnv::kAnswered], 0.0);
        }
      }
    }
    return failed;
  };
  const int f = run(3);
  EXPECT_EQ(f, run(3));
  EXPECT_GT(f, 60);   // 400 calls at p = 0.3: mean 120, sd 9
  EXPECT_LT(f, 180);
}

TEST(ConductorEnv, SequentialModeCoversTheSplitOnceInOrder) {
  const TraceSet& T = *shared_tiny();
  auto env = make_env_from("split: train\nmode: sequential\nmax_steps: 1\n", 6);
  std::vector<int> seen;
  std::vector<int32_t> a(6, 0);
  while (!env->sequential_pass_complete()) {
    env->step(a.data());
    for (const auto& r : env->finished())
      if (r.extras[ConductorEnv::kPass] == 0) seen.push_back(static_cast<int>(r.extras[ConductorEnv::kQueryIndex]));
  }
  std::vector<int> expected;
  for (std::size_t q : T.split_indices(Split::kTrain)) expected.push_back(static_cast<int>(q));
  EXPECT_EQ(seen, expected);  // max_steps 1: all envs finish each step, in env order = query order
  EXPECT_EQ(env->split_size(), expected.size());
}

TEST(ConductorEnv, RewardIsTheCompositeAtFinishOnly) {
  const TraceSet& T = *shared_tiny();
  auto env = make_env_from(
      "mode: sequential\nmax_steps: 3\nreward: {w_quality: 2, w_cost: 1000, w_latency: 0.5, no_answer_penalty: 3}\n", 1);
  const int q = env->state_view(0).query;
  int32_t a = 2;
  env->step(&a);
  EXPECT_EQ(env->reward()[0], 0.f);
  a = env->n_workers();
  env->step(&a);
  const std::size_t k = T.at(q, 2);
  const double expected = 2 * T.quality[k] - 1000 * T.cost_usd[k] - 0.5 * T.latency_s[k];
  EXPECT_FLOAT_EQ(env->reward()[0], static_cast<float>(expected));
  EXPECT_EQ(env->terminated()[0], 1);
  EXPECT_EQ(env->truncated()[0], 0);
}

TEST(ConductorEnv, StepLimitAppliesTheDefaultRuleAndSetsBothFlags) {
  const TraceSet& T = *shared_tiny();
  auto env = make_env_from("mode: sequential\nmax_steps: 2\nfinish_rules: [vote, last]\ndefault_finish: last\n", 1);
  const int q = env->state_view(0).query;
  int32_t a = 0;
  env->step(&a);
  EXPECT_EQ(env->terminated()[0] + env->truncated()[0], 0);
  a = 2;
  env->step(&a);
  EXPECT_EQ(env->terminated()[0], 1);  // the outcome is final: nothing to bootstrap
  EXPECT_EQ(env->truncated()[0], 1);   // and the step limit decided
  ASSERT_EQ(env->finished().size(), 1u);
  EXPECT_TRUE(env->finished()[0].truncated);
  EXPECT_EQ(env->finished()[0].length, 2);
  EXPECT_EQ(env->finished()[0].extras[ConductorEnv::kQuality], T.quality[T.at(q, 2)]);  // last = w2
  EXPECT_FLOAT_EQ(env->reward()[0], T.quality[T.at(q, 2)]);
  const ObsLayout& L = env->layout();
  for (int k = 0; k < env->spec().n_actions; ++k) EXPECT_EQ(env->final_obs()[L.mask + k], 0.f);
  EXPECT_EQ(env->final_obs()[L.called + 0], 1.f);
  EXPECT_EQ(env->final_obs()[L.called + 2], 1.f);
}

TEST(ConductorEnv, NoAnswerIsPenalizedAndFinishAllowedWhenNothingIsCallable) {
  auto env = make_env_from(
      "max_steps: 5\nworkers: [w0, w1]\nreward: {no_answer_penalty: 3}\n"
      "faults:\n  - {type: outage, worker: all, start: 0, duration: 100}\n",
      1);
  int32_t a = 0;
  env->step(&a);
  EXPECT_EQ(env->action_mask()[2], 0);  // w1 still callable: FINISH masked
  a = 1;
  env->step(&a);
  EXPECT_EQ(env->action_mask()[2], 1);  // nothing callable any more: FINISH allowed
  a = 2;
  env->step(&a);
  ASSERT_EQ(env->finished().size(), 1u);
  EXPECT_EQ(env->reward()[0], -3.f);
  EXPECT_EQ(env->finished()[0].extras[ConductorEnv::kAnswered], 0.0);
}

TEST(ConductorEnv, FinishRules) {
  // Build a world where one query's answers are known: w0 -> 1 (wrong), w1 -> 0 (right), w2 -> 1 (wrong).
  TraceSet t = tiny_world(3);
  for (int q = 0; q < 3; ++q) {
    const int ans[4] = {1, 0, 1, 0};
    for (int m = 0; m < 4; ++m) {
      t.answer[t.at(q, m)] = ans[m];
      t.quality[t.at(q, m)] = ans[m] == 0 ? 1.f : 0.f;
      t.split[q] = 0;
    }
  }
  // Make w1 the most trusted on the train split: it is always right, w3 too but w1 comes first.
  auto traces = std::make_shared<const TraceSet>(t);
  auto quality_of = [&](const std::string& rule) {
    auto env = make_env_from("max_steps: 4\nfinish_rules: [last, vote, most_trusted]\n", 1, traces);
    for (int32_t a : {0, 1, 2}) env->step(&a);
    const int idx = rule == "last" ? 0 : rule == "vote" ? 1 : 2;
    int32_t a = env->n_workers() + idx;
    env->step(&a);
    return env->finished().at(0).extras[ConductorEnv::kQuality];
  };
  EXPECT_EQ(quality_of("last"), 0.0);          // w2 answered 1
  EXPECT_EQ(quality_of("vote"), 0.0);          // answer 1 has two votes
  EXPECT_EQ(quality_of("most_trusted"), 1.0);  // w1 (trust 1.0) answered 0
}

TEST(ConductorEnv, BudgetCapMasksWorkersThatWouldExceedIt) {
  const TraceSet& T = *shared_tiny();
  auto env0 = make_env_from("max_steps: 2\n", 1);
  const double c3 = env0->world().expected_cost[3], c0 = env0->world().expected_cost[0];
  ASSERT_GT(c3, 2 * c0);
  const double cap = (c3 + c0) / 2;
  auto env = make_env_from("max_steps: 2\nreward: {budget: {mode: cap, cap_usd: " + std::to_string(cap) + "}}\n", 1);
  EXPECT_EQ(env->action_mask()[0], 1);
  EXPECT_EQ(env->action_mask()[3], 0);
  (void)T;
}

TEST(ConductorEnv, LagrangeMultiplierFollowsTheTargetCost) {
  // With lambda_kp = 0, dual ascent: lambda <- clamp(lambda + lr * (mean - target) / target, 0, max).
  BudgetConfig b;
  b.mode = BudgetMode::kLagrange;
  b.target_mean_cost_usd = 0.01;
  b.lambda_lr = 10;
  b.lambda_init = 1;
  BudgetController ctl(b);
  ctl.observe(0.02);
  ctl.observe(0.04);
  EXPECT_DOUBLE_EQ(ctl.observed_mean(), 0.03);
  EXPECT_NEAR(ctl.update(), 1 + 10 * 2.0, 1e-12);   // gap (0.03 - 0.01) / 0.01 = 2
  EXPECT_NEAR(ctl.update_with(0.0), 11.0, 1e-12);  // gap -1
  EXPECT_NEAR(ctl.update_with(0.0), 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(ctl.update_with(0.0), 0.0);   // clamped at 0
  EXPECT_DOUBLE_EQ(ctl.integral(), 0.0);          // projected: no wind-up below zero
  EXPECT_NEAR(ctl.update_with(0.02), 10.0, 1e-12);  // so one gap of +1 lifts it at once
  // PI: I <- max(0, I + e); lambda <- lr * I + kp * e (I starts at lambda_init / lr = 0.5).
  b.lambda_kp = 4;
  b.lambda_lr = 2;
  BudgetController pi(b);
  EXPECT_NEAR(pi.update_with(0.03), 2 * 2.5 + 4 * 2.0, 1e-12);    // e = 2, I = 2.5
  EXPECT_NEAR(pi.update_with(0.005), 2 * 2.0 + 4 * -0.5, 1e-12);  // e = -0.5, I = 2
  EXPECT_DOUBLE_EQ(pi.update_with(0.0), 0.0);                     // e = -1, I = 1: 2 - 4 < 0, clamped
  EXPECT_DOUBLE_EQ(pi.integral(), 1.0);
  // Through the env: lambda scales the cost term.
  const TraceSet& T = *shared_tiny();
  auto env = make_env_from(
      "mode: sequential\nmax_steps: 1\nreward: {w_quality: 1, w_cost: 0, budget: {mode: lagrange, target_mean_cost_usd: 0.001, lambda_init: 100}}\n", 1);
  const int q = env->state_view(0).query;
  int32_t a = 3;
  env->step(&a);
  const std::size_t k = T.at(q, 3);
  EXPECT_FLOAT_EQ(env->reward()[0], static_cast<float>(T.quality[k] - 100 * T.cost_usd[k]));
  EXPECT_DOUBLE_EQ(env->budget().observed_mean(), T.cost_usd[k]);
}

TEST(ConductorEnv, RandomizedPoolsRespectMinSize) {
  auto env = make_env_from("pool: {randomize: true, min_size: 2}\nmax_steps: 1\n", 16);
  std::vector<int32_t> a(16);
  std::map<int, int> sizes;
  for (int s = 0; s < 50; ++s) {
    for (int i = 0; i < 16; ++i) {
      const ConductorStateView v = env->state_view(i);
      int n = 0;
      a[i] = -1;
      for (int k = 0; k < 4; ++k) {
        n += v.pool[k];
        if (v.pool[k] && a[i] < 0) a[i] = k;
        EXPECT_EQ(v.action_mask[k], v.pool[k]);
      }
      ++sizes[n];
    }
    env->step(a.data());
  }
  EXPECT_EQ(sizes.count(0) + sizes.count(1), 0u);
  EXPECT_GT(sizes[2], 0);
  EXPECT_GT(sizes[4], 0);
}

TEST(ConductorEnv, ObservationNeverContainsHiddenQuality) {
  // Two worlds that differ only in quality give identical observations for identical actions.
  TraceSet a = tiny_world(), b = tiny_world();
  for (auto& q : b.quality) q = 1.f - q;
  b.split = a.split;
  auto ea = make_env_from("max_steps: 3\n", 4, std::make_shared<const TraceSet>(a));
  auto eb = make_env_from("max_steps: 3\nworld_seed: 0\n", 4, std::make_shared<const TraceSet>(b));
  // trust (most_trusted) and the expert differ, but not the observation
  Rng rng(1);
  std::vector<int32_t> act(4);
  for (int s = 0; s < 30; ++s) {
    ASSERT_TRUE(std::equal(ea->obs(), ea->obs() + 4 * ea->spec().obs_dim, eb->obs())) << "step " << s;
    testing::conformance_detail::random_actions(*ea, rng, act);
    for (int i = 0; i < 4; ++i)
      if (act[i] >= ea->n_workers()) act[i] = ea->n_workers();  // finish:last (same in both)
    ea->step(act.data());
    eb->step(act.data());
  }
}

TEST(ConductorEnv, ConfigErrorsAtLoadTime) {
  EXPECT_NE(error_of("workers: [w0, gpt-9]\n").find("unknown worker 'gpt-9'"), std::string::npos)
      << error_of("workers: [w0, gpt-9]\n");
  EXPECT_NE(error_of("workers: [w0, gpt-9]\n").find("env.yaml:1"), std::string::npos);
  EXPECT_NE(error_of("workers: []\n").find("pool is empty"), std::string::npos);
  EXPECT_NE(error_of("max_steps: 0\n").find("max_steps"), std::string::npos);
  EXPECT_NE(error_of("reward: {w_cost: -1}\n").find("w_cost"), std::string::npos);
  EXPECT_NE(error_of("reward: {w_cost: -1}\n").find("non-negative"), std::string::npos);
  EXPECT_NE(error_of("finish_rules: [last, best]\n").find("unknown finish rule 'best'"), std::string::npos);
  EXPECT_NE(error_of("pool: {min_size: 9}\n").find("min_size"), std::string::npos);
  EXPECT_NE(error_of("faults:\n  - {type: outage, worker: w9, start: 0, duration: 2}\n").find("unknown worker 'w9'"),
            std::string::npos);
  EXPECT_NE(error_of("faults:\n  - {type: outage, worker: w1, duration: 2}\n").find("exactly one of"), std::string::npos);
  EXPECT_NE(error_of("bogus: 1\n").find("bogus"), std::string::npos);
  TraceSet neg = tiny_world();
  neg.price_out_per_mtok[2] = -1;
  try {
    make_env_from("max_steps: 1\n", 1, std::make_shared<const TraceSet>(neg));
    ADD_FAILURE() << "negative price accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("negative price"), std::string::npos) << e.what();
  }
}

TEST(ConductorEnv, MaskedActionThrowsInDebugBuilds) {
#ifdef NDEBUG
  GTEST_SKIP() << "release build: masked actions are not checked";
#else
  auto env = make_env_from("max_steps: 3\n", 1);
  int32_t a = env->n_workers();  // FINISH before any answer: masked
  EXPECT_THROW(env->step(&a), InternalError);
  a = 99;
  EXPECT_THROW(env->step(&a), InternalError);
#endif
}

TEST(ConductorEnv, ExpertActionsAreAllowed) {
  auto env = make_env_from("max_steps: 3\npool: {randomize: true}\n", 8);
  std::vector<int32_t> a(8);
  for (int s = 0; s < 50; ++s) {
    ASSERT_TRUE(env->expert_actions(a.data()));
    for (int i = 0; i < 8; ++i) ASSERT_EQ(env->action_mask()[i * env->spec().n_actions + a[i]], 1);
    env->step(a.data());
  }
}

TEST(ConductorEnv, ConformanceReplayWithFaultsAndPools) {
  testing::EnvConformanceOptions o;
  o.steps = 1500;
  testing::check_env_conformance(
      [] {
        return make_env_from(
            "max_steps: 3\npool: {randomize: true, min_size: 1}\n"
            "reward: {w_cost: 100, w_latency: 0.01}\n"
            "faults:\n"
            "  - {type: outage, worker: w3, rate: 0.05, duration: 4}\n"
            "  - {type: outage, worker: w1, rate: 0.05, duration: 3, announced: true}\n"
            "  - {type: timeout, worker: all, prob: 0.05}\n"
            "  - {type: latency_spike, worker: w2, prob: 0.2, factor: 3}\n"
            "  - {type: price_change, worker: w0, factor: 2, at_episode: 30}\n"
            "  - {type: price_noise, worker: all, log2_sd: 1, prob: 0.3}\n"
            "observe_price_changes: true\n",
            6);
      },
      o);
}

TEST(ConductorEnv, ConformanceRoutingAndHybridModel) {
  testing::check_env_conformance([] { return make_env_from("max_steps: 1\n", 5); });
  TraceSet holes = tiny_world();
  for (std::size_t q = 0; q < holes.n_queries(); q += 4) {
    const std::size_t k = holes.at(q, q % 4);
    holes.quality[k] = kMissingF;
    holes.cost_usd[k] = kMissingD;
  }
  auto traces = std::make_shared<const TraceSet>(holes);
  testing::check_env_conformance([traces] { return make_env_from("max_steps: 2\nreward_model: hybrid\n", 4, traces); });
  testing::check_env_conformance([traces] { return make_env_from("max_steps: 2\nreward_model: model\n", 4, traces); });
}

TEST(ConductorEnv, RegisteredAndLoadsATraceFile) {
  const std::string dir = testing::temp_dir();
  write_traces(tiny_world(), dir + "/tiny.h5");
  ConfigDoc doc = ConfigDoc::load_string("traces: " + dir + "/tiny.h5\nmax_steps: 2\n", "env.yaml");
  ConfigReader r = doc.root();
  auto env = make_env("conductor", r, 3);
  EXPECT_EQ(env->spec().id, "conductor");
  EXPECT_EQ(env->spec().n_actions, 4 + 3);
  EXPECT_EQ(env->spec().action_names[0], "call:w0");
  EXPECT_EQ(env->spec().action_names[5], "finish:vote");
  EXPECT_EQ(env->num_envs(), 3);
}

// env.observe_price_changes: a segment of log2(price factor) per worker, 0 at list prices and
// log2(3) inside a tripled-price window; absent (dimension unchanged) when off.
TEST(ConductorEnv, PriceChangeSegmentCarriesLog2OfTheFactor) {
  const char* faults = "max_steps: 1\nmode: sequential\nfaults:\n  - {type: price_change, worker: w1, factor: 3, start: 1, duration: 1}\n";
  auto off = make_env_from(faults, 1);
  auto on = make_env_from(std::string(faults) + "observe_price_changes: true\n", 1);
  const ObsLayout& L = on->layout();
  EXPECT_EQ(off->layout().price_change_dim, 0);
  EXPECT_EQ(L.price_change_dim, on->n_workers());
  EXPECT_EQ(L.dim, off->layout().dim + on->n_workers());
  EXPECT_EQ(L.mask + on->spec().n_actions, L.dim);  // the mask stays the last segment
  for (int e = 0; e < 3; ++e) {
    const float* o = on->obs();
    for (int k = 0; k < on->n_workers(); ++k)
      EXPECT_FLOAT_EQ(o[L.price_change + k], (e == 1 && k == 1) ? static_cast<float>(std::log2(3.0)) : 0.f)
          << "episode " << e << " worker " << k;
    // Everything before the new segment is what the environment without it writes.
    for (int j = 0; j < L.price_change; ++j) EXPECT_EQ(o[j], off->obs()[j]) << "episode " << e << " float " << j;
    int32_t a = 1;
    on->step(&a);
    off->step(&a);
  }
  EXPECT_FLOAT_EQ(price_change_obs(1.f), 0.f);
  EXPECT_FLOAT_EQ(price_change_obs(0.5f), -1.f);
  EXPECT_FLOAT_EQ(price_change_obs(1000.f), 4.f);
  EXPECT_FLOAT_EQ(price_change_obs(0.f), -4.f);
}

// price_noise: each episode (with probability prob) a worker's price is multiplied by
// 2^N(0, log2_sd^2); the charged cost and the observed log2 factor agree, the draws are seeded.
TEST(ConductorEnv, PriceNoiseDrawsLogNormalFactorsThePolicySees) {
  const TraceSet& T = *shared_tiny();
  const std::string yaml = "max_steps: 1\nmode: sequential\nobserve_price_changes: true\nfaults:\n"
                           "  - {type: price_noise, worker: w1, log2_sd: 1, prob: 0.5}\n";
  auto env = make_env_from(yaml, 1);
  const ObsLayout& L = env->layout();
  std::vector<float> seen;
  int unchanged = 0;
  for (int e = 0; e < 2000; ++e) {
    const float x = env->obs()[L.price_change + 1];
    EXPECT_EQ(env->obs()[L.price_change + 0], 0.f);  // other workers keep list prices
    const int q = env->state_view(0).query;
    int32_t a = 1;
    env->step(&a);
    EXPECT_NEAR(env->finished()[0].extras[ConductorEnv::kCostUsd], T.cost_usd[T.at(q, 1)] * std::exp2(double(x)),
                1e-6 * T.cost_usd[T.at(q, 1)] + 1e-12);
    if (x == 0.f) ++unchanged; else seen.push_back(x);
  }
  // About half the episodes at list price; the others log2-normal with sd 1 (clip at +-4 aside).
  EXPECT_NEAR(unchanged / 2000.0, 0.5, 0.05);
  double m = 0, v = 0;
  for (float x : seen) m += x;
  m /= seen.size();
  for (float x : seen) v += (x - m) * (x - m);
  v /= seen.size();
  EXPECT_NEAR(m, 0.0, 0.1);
  EXPECT_NEAR(std::sqrt(v), 1.0, 0.08);
  // Same seed, same draws.
  // Same seed, same draws; another seed, other draws; and the draws are not one repeated value.
  auto a1 = make_env_from(yaml, 1), a2 = make_env_from(yaml, 1), b = make_env_from(yaml, 1);
  a1->reset(7);
  a2->reset(7);
  b->reset(8);
  int differ_other_seed = 0;
  for (int e = 0; e < 50; ++e) {
    EXPECT_EQ(a1->obs()[L.price_change + 1], a2->obs()[L.price_change + 1]) << "episode " << e;
    differ_other_seed += a1->obs()[L.price_change + 1] != b->obs()[L.price_change + 1];
    int32_t a = 1;
    a1->step(&a);
    a2->step(&a);
    b->step(&a);
  }
  EXPECT_GT(differ_other_seed, 10);
  ASSERT_GE(seen.size(), 3u);
  EXPECT_TRUE(seen[0] != seen[1] && seen[1] != seen[2]);
  EXPECT_THROW(make_env_from("faults:\n  - {type: price_noise, worker: w1, log2_sd: 0}\n", 1), Error);
  EXPECT_THROW(make_env_from("faults:\n  - {type: price_noise, worker: w1, log2_sd: 1, prob: 2}\n", 1), Error);
}

TEST(ConductorEnv, StateViewMatchesTheVectorObservation) {
  auto env = make_env_from("max_steps: 3\n", 2);
  int32_t a[2] = {1, 2};
  env->step(a);
  const ObsLayout& L = env->layout();
  for (int i = 0; i < 2; ++i) {
    const ConductorStateView v = env->state_view(i);
    const float* o = env->obs() + i * L.dim;
    ASSERT_EQ(v.n_steps, 1);
    EXPECT_EQ(o[L.history + v.steps[0].worker], 1.f);
    EXPECT_EQ(o[L.called + v.steps[0].worker], 1.f);
    EXPECT_FLOAT_EQ(o[L.history + env->n_workers() + 1], std::log1p(double(v.steps[0].output_tokens)) / 10.0);
    for (int k = 0; k < env->spec().n_actions; ++k) EXPECT_EQ(o[L.mask + k], v.action_mask[k]);
    EXPECT_EQ(v.task, shared_tiny()->query_task[v.query]);
  }
}

// Done-when 1 on real data: RouterBench (11 workers, no logged latency, a few quality cells empty).
// Calling worker k once gives exactly its logged quality and cost on every test query where k is
// logged; pairs that are not logged are masked (replay never invents them).
TEST(ConductorEnv, ReplayIsExactOnRouterBench) {
  CONDUCTOR_REQUIRE_SHARED_DATA(data);
  ImportOptions options;
  ImportReport report;
  auto traces = std::make_shared<const TraceSet>(import_routerbench({data + "/routerbench"}, options, report));
  const TraceSet& T = *traces;
  const std::vector<std::size_t> test = T.split_indices(Split::kTest);
  const ConductorEnvConfig c = parse_env("split: test\nmode: sequential\nmax_steps: 1\n");
  const auto world = ConductorWorld::build(c, traces);
  for (int k = 0; k < 11; ++k) {
    ConductorEnv env(c, world, 16);
    const int A = env.spec().n_actions;
    auto records = run_pass(env, [&](ConductorEnv& e, int i) {
      const uint8_t* m = e.action_mask() + static_cast<std::size_t>(i) * A;
      if (m[k]) return k;
      for (int a = 0; a < A; ++a)
        if (m[a]) return a;
      return -1;
    });
    ASSERT_EQ(records.size(), test.size());
    double q_env = 0, c_env = 0, q_log = 0, c_log = 0;
    int n = 0;
    for (std::size_t j = 0; j < test.size(); ++j) {
      const std::size_t cell = T.at(test[j], k);
      if (std::isnan(T.quality[cell]) || std::isnan(T.cost_usd[cell])) continue;
      ++n;
      q_env += records[j].extras[ConductorEnv::kQuality];
      c_env += records[j].extras[ConductorEnv::kCostUsd];
      q_log += T.quality[cell];
      c_log += T.cost_usd[cell];
    }
    EXPECT_GT(n, 900);
    EXPECT_EQ(q_env / n, q_log / n) << T.model_name[k];
    EXPECT_EQ(c_env / n, c_log / n) << T.model_name[k];
  }
}

// Two 5-env environments of `yaml`: the first takes `warm` random steps (then `before_save`), the
// second loads its snapshot, and both take `steps` more identical steps. Observations and rewards
// (and `each`, before every step) must agree throughout.
std::pair<std::unique_ptr<ConductorEnv>, std::unique_ptr<ConductorEnv>> snapshot_twins(
    const std::string& yaml, int warm, int steps, const std::function<void(ConductorEnv&)>& before_save,
    const std::function<void(const ConductorEnv&, const ConductorEnv&)>& each = nullptr) {
  auto a = make_env_from(yaml, 5), b = make_env_from(yaml, 5);
  a->reset(9);
  Rng rng(4);
  std::vector<int32_t> act(5);
  for (int s = 0; s < warm; ++s) {
    testing::conformance_detail::random_actions(*a, rng, act);
    a->step(act.data());
  }
  if (before_save) before_save(*a);
  b->load_state(a->save_state());
  for (int s = 0; s < steps; ++s) {
    EXPECT_TRUE(std::equal(a->obs(), a->obs() + 5 * a->spec().obs_dim, b->obs())) << s;
    if (each) each(*a, *b);
    testing::conformance_detail::random_actions(*a, rng, act);
    a->step(act.data());
    b->step(act.data());
    EXPECT_TRUE(std::equal(a->reward(), a->reward() + 5, b->reward())) << s;
  }
  return {std::move(a), std::move(b)};
}

TEST(ConductorEnv, SaveAndLoadStateResumesBitForBit) {
  const std::string yaml =
      "max_steps: 3\npool: {randomize: true}\nreward: {w_cost: 10, budget: {mode: lagrange, target_mean_cost_usd: 0.001}}\n"
      "faults:\n  - {type: outage, worker: w2, rate: 0.1, duration: 3}\n  - {type: timeout, worker: all, prob: 0.1}\n";
  auto [a, b] = snapshot_twins(yaml, 37, 50, [](ConductorEnv& e) { e.budget().update(); });
  EXPECT_EQ(a->budget().lambda(), b->budget().lambda());
  auto other = make_env_from("max_steps: 2\n", 5);
  EXPECT_THROW(other->load_state(a->save_state()), Error);
  EXPECT_THROW(b->load_state("junk"), Error);
}

// Cost conditioning: each training episode draws w_cost log-uniformly from the range, the policy
// sees its log-position in [-1, 1], and the reward charges that episode's weight.
TEST(ConductorEnv, CostConditionedEpisodesDrawTheirWeightAndRewardIt) {
  const TraceSet& T = *shared_tiny();
  auto plain = make_env_from("max_steps: 1\nreward: {w_cost: 30}\n", 4);
  auto env = make_env_from("max_steps: 1\nreward: {w_cost: 30, w_cost_range: [3, 3000]}\n", 4);
  const ObsLayout& L = env->layout();
  ASSERT_EQ(L.preference_dim, 1);
  EXPECT_EQ(plain->layout().preference_dim, 0);
  EXPECT_EQ(env->spec().obs_dim, plain->spec().obs_dim + 1);
  EXPECT_EQ(L.mask, L.preference + 1);  // the mask stays the last segment
  const RewardConfig& rc = env->config().reward;
  EXPECT_DOUBLE_EQ(rc.cost_preference(3), -1.0);
  EXPECT_DOUBLE_EQ(rc.cost_preference(3000), 1.0);
  EXPECT_NEAR(rc.cost_preference(std::sqrt(3.0 * 3000.0)), 0.0, 1e-12);
  env->reset(5);
  double sum_log = 0, lo = 1e9, hi = 0;
  int n = 0;
  std::vector<int32_t> a(4);
  for (int step = 0; step < 500; ++step) {
    std::vector<double> w(4);
    for (int i = 0; i < 4; ++i) {
      w[i] = env->episode_cost_weight(i);
      EXPECT_EQ(env->state_view(i).cost_weight, w[i]);
      ASSERT_GE(w[i], 3.0);
      ASSERT_LE(w[i], 3000.0);
      EXPECT_EQ(env->obs()[i * L.dim + L.preference], static_cast<float>(rc.cost_preference(w[i])));
      sum_log += std::log(w[i]);
      lo = std::min(lo, w[i]);
      hi = std::max(hi, w[i]);
      ++n;
      a[i] = step % 4;
    }
    const std::vector<int> queries = {env->state_view(0).query, env->state_view(1).query, env->state_view(2).query,
                                      env->state_view(3).query};
    env->step(a.data());
    for (int i = 0; i < 4; ++i) {
      const std::size_t k = T.at(queries[i], a[i]);
      const double expected = T.quality[k] - w[i] * T.cost_usd[k];
      ASSERT_FLOAT_EQ(env->reward()[i], static_cast<float>(expected)) << "step " << step << " env " << i;
    }
  }
  // Log-uniform: the mean log weight is the log of the geometric midpoint (sd of the mean ~0.05).
  EXPECT_NEAR(sum_log / n, std::log(std::sqrt(3.0 * 3000.0)), 0.25);
  EXPECT_LT(lo, 4.0);
  EXPECT_GT(hi, 2000.0);
}

TEST(ConductorEnv, CostConditionedEvaluationUsesTheDefaultWeightAndSnapshotsResume) {
  auto seq = make_env_from("mode: sequential\nmax_steps: 1\nreward: {w_cost: 30, w_cost_range: [3, 3000]}\n", 3);
  int32_t a[3] = {0, 1, 2};
  for (int s = 0; s < 10; ++s) {
    for (int i = 0; i < 3; ++i) ASSERT_EQ(seq->episode_cost_weight(i), 30.0);
    seq->step(a);
  }
  const std::string yaml = "max_steps: 3\npool: {randomize: true}\nreward: {w_cost: 30, w_cost_range: [3, 3000]}\n";
  snapshot_twins(yaml, 23, 40, nullptr, [](const ConductorEnv& x, const ConductorEnv& y) {
    for (int i = 0; i < 5; ++i) ASSERT_EQ(x.episode_cost_weight(i), y.episode_cost_weight(i));
  });
  testing::check_env_conformance([yaml] { return make_env_from(yaml, 4); });
}

TEST(ConductorEnv, CostRangeIsOnlyInTheResolvedConfigWhenGiven) {
  // Runs resume only when their resolved config.yaml is unchanged: an absent range stays absent.
  for (const std::string& yaml : {std::string("reward: {w_cost: 30}\n"), std::string("max_steps: 2\n")}) {
    ConfigDoc doc = ConfigDoc::load_string(yaml, "env.yaml");
    ConfigReader r = doc.root();
    ConductorEnvConfig::parse(r);
    EXPECT_EQ(doc.resolved_yaml().find("w_cost_range"), std::string::npos) << doc.resolved_yaml();
    EXPECT_NE(doc.resolved_yaml().find("w_cost"), std::string::npos) << doc.resolved_yaml();
  }
  ConfigDoc doc = ConfigDoc::load_string("reward: {w_cost: 30, w_cost_range: [3, 300]}\n", "env.yaml");
  ConfigReader r = doc.root();
  EXPECT_TRUE(ConductorEnvConfig::parse(r).reward.cost_conditioned());
  EXPECT_NE(doc.resolved_yaml().find("w_cost_range"), std::string::npos);
}

TEST(ConductorEnv, CostRangeErrorsNameTheKey) {
  const std::string reversed = error_of("reward: {w_cost: 30, w_cost_range: [300, 3]}\n");
  EXPECT_NE(reversed.find("w_cost_range"), std::string::npos) << reversed;
  EXPECT_NE(reversed.find("0 < lo < hi"), std::string::npos) << reversed;
  EXPECT_NE(error_of("reward: {w_cost: 30, w_cost_range: [0, 3]}\n").find("w_cost_range"), std::string::npos);
  EXPECT_NE(error_of("reward: {w_cost: 30, w_cost_range: [3]}\n").find("w_cost_range"), std::string::npos);
  const std::string outside = error_of("reward: {w_cost: 1, w_cost_range: [3, 300]}\n");
  EXPECT_NE(outside.find("must lie in w_cost_range [3, 300]"), std::string::npos) << outside;
  EXPECT_NE(outside.find("env.yaml"), std::string::npos) << outside;
}

// The tiny world where exactly one worker, right_worker(traces, q), answers query q correctly.
template <class RightWorker>
TraceSet one_right_worker_world(RightWorker right_worker) {
  TraceSet t = tiny_world();
  for (std::size_t q = 0; q < t.n_queries(); ++q) {
    const int right = right_worker(t, q);
    for (int m = 0; m < 4; ++m) {
      t.quality[t.at(q, m)] = m == right ? 1.f : 0.f;
      t.answer[t.at(q, m)] = m == right ? 0 : 1;
    }
  }
  return t;
}

TEST(ConductorEnv, PerTaskExpertPicksEachTasksBestWorker) {
  // w1 answers every math query and nothing else, w2 every trivia query: the best single worker is one
  // of them for all queries, the per-task expert calls w1 on math and w2 on trivia, then finishes.
  const TraceSet t =
      one_right_worker_world([](const TraceSet& t, std::size_t q) { return t.query_task[q] == "math" ? 1 : 2; });
  auto env = make_env_from("max_steps: 3\nreward: {w_cost: 0}\n", 8, std::make_shared<const TraceSet>(t));
  std::vector<int32_t> fixed(8), per_task(8);
  int math = 0, trivia = 0;
  std::set<int32_t> fixed_first;
  for (int s = 0; s < 40; ++s) {
    ASSERT_TRUE(env->expert_actions(fixed.data()));
    ASSERT_TRUE(env->expert_actions(per_task.data(), Expert::kPerTask));
    const ConductorStateView* views = env->state_views();
    for (int i = 0; i < 8; ++i) {
      ASSERT_EQ(env->action_mask()[i * env->spec().n_actions + per_task[i]], 1);
      if (views[i].n_steps > 0) {
        // One answer in hand: both experts finish with the default rule.
        EXPECT_GE(per_task[i], env->n_workers());
        EXPECT_EQ(per_task[i], fixed[i]);
        continue;
      }
      const bool is_math = std::string(views[i].task) == "math";
      EXPECT_EQ(per_task[i], is_math ? 1 : 2) << views[i].task;
      fixed_first.insert(fixed[i]);
      (is_math ? math : trivia) += 1;
    }
    env->step(per_task.data());
  }
  EXPECT_GT(math, 10);
  EXPECT_GT(trivia, 10);
  // The best fixed strategy calls one worker whatever the task.
  ASSERT_EQ(fixed_first.size(), 1u);
  EXPECT_TRUE(*fixed_first.begin() == 1 || *fixed_first.begin() == 2);
}

TEST(ConductorEnv, RouterExpertRoutesEachQueryByItsPredictions) {
  // Within each task, w1 answers the short ("quickly") queries and w2 the long ones: one worker per
  // task is right half the time, the router expert reads the query's features and is right on each.
  const auto traces = std::make_shared<const TraceSet>(one_right_worker_world(
      [](const TraceSet& t, std::size_t q) { return t.query_text[q].find("quickly") != std::string::npos ? 1 : 2; }));
  auto env = make_env_from("max_steps: 3\nreward: {w_cost: 0}\n", 8, traces);
  std::vector<int32_t> router(8), per_task(8);
  int first = 0, right = 0, finishes = 0;
  std::set<std::pair<std::string, int32_t>> per_task_first;
  for (int s = 0; s < 40; ++s) {
    ASSERT_TRUE(env->expert_actions(router.data(), Expert::kRouter));
    ASSERT_TRUE(env->expert_actions(per_task.data(), Expert::kPerTask));
    const ConductorStateView* views = env->state_views();
    for (int i = 0; i < 8; ++i) {
      ASSERT_EQ(env->action_mask()[i * env->spec().n_actions + router[i]], 1);
      if (views[i].n_steps > 0) {
        EXPECT_EQ(router[i], per_task[i]);  // one answer in hand: finish with the default rule
        EXPECT_GE(router[i], env->n_workers());
        ++finishes;
        continue;
      }
      const bool short_query = std::string(views[i].text).find("quickly") != std::string::npos;
      ++first;
      right += router[i] == (short_query ? 1 : 2);
      per_task_first.insert({std::string(views[i].task), per_task[i]});
    }
    env->step(router.data());
  }
  EXPECT_GT(finishes, 100);
  ASSERT_GT(first, 100);
  EXPECT_EQ(right, first);
  EXPECT_EQ(per_task_first.size(), 2u);  // the per-task expert: one worker per task

  // A high cost weight makes the cheapest worker the router's choice on every query.
  auto thrifty = make_env_from("max_steps: 3\nreward: {w_cost: 1000000}\n", 8, traces);
  ASSERT_TRUE(thrifty->expert_actions(router.data(), Expert::kRouter));
  for (int i = 0; i < 8; ++i) EXPECT_EQ(router[i], 0);

  // The episode's prices count: w1 at a million times its price is never the choice, w2 still is
  // on the long queries. And in a cost-conditioned run each episode's own weight decides: the
  // cheapest worker at a high weight, the per-query best at a tiny one.
  auto priced = make_env_from(
      "max_steps: 1\nreward: {w_cost: 1}\nfaults:\n  - {type: price_change, worker: w1, factor: 1000000, at_episode: 0}\n",
      8, traces);
  auto ranged = make_env_from("max_steps: 1\nreward: {w_cost: 1, w_cost_range: [0.0001, 1000000]}\n", 8, traces);
  int long_queries = 0, cheap = 0, exact = 0;
  for (int s = 0; s < 40; ++s) {
    ASSERT_TRUE(priced->expert_actions(router.data(), Expert::kRouter));
    const ConductorStateView* views = priced->state_views();
    for (int i = 0; i < 8; ++i) {
      EXPECT_NE(router[i], 1);
      if (std::string(views[i].text).find("quickly") == std::string::npos) {
        EXPECT_EQ(router[i], 2);
        ++long_queries;
      }
    }
    priced->step(router.data());
    ASSERT_TRUE(ranged->expert_actions(router.data(), Expert::kRouter));
    views = ranged->state_views();
    for (int i = 0; i < 8; ++i) {
      const bool short_query = std::string(views[i].text).find("quickly") != std::string::npos;
      if (views[i].cost_weight > 1e5) {
        EXPECT_EQ(router[i], 0);
        ++cheap;
      }
      if (views[i].cost_weight < 1e-2) {
        EXPECT_EQ(router[i], short_query ? 1 : 2);
        ++exact;
      }
    }
    ranged->step(router.data());
  }
  EXPECT_GT(long_queries, 50);
  EXPECT_GT(cheap, 5);
  EXPECT_GT(exact, 5);
}

}  // namespace
}  // namespace conductor
