// The serving observation builder must reproduce ConductorEnv's observations float for float:
// we step the real environment with random allowed actions and rebuild every observation from
// what a gateway would know (query text, task, length, pool, and the results of the calls).
#include <gtest/gtest.h>

#include <cstring>

#include "serve/conductor_world.h"
#include "tests/serve/serve_fixtures.h"
#include "traces/trace_set.h"

namespace conductor::serve {
namespace {

using testing::make_test_world;

LiveQuery query_of(const ConductorStateView& v) {
  LiveQuery q;
  q.text = std::string(v.text);
  q.task = std::string(v.task);
  q.input_tokens = v.input_tokens;
  q.available.assign(v.pool, v.pool + v.n_workers);
  return q;
}

CallResult result_of(const ConductorStepView& s) {
  CallResult r;
  r.worker = s.worker;
  r.error = s.error;
  r.output_tokens = s.output_tokens;
  r.answer_id = s.answer;
  r.latency_s = s.latency_s;
  r.cost_usd = s.cost_usd;
  return r;
}

void check_env_matches_live(const testing::TestWorld& t, int num_envs, int steps, uint64_t seed) {
  ConductorEnv env(t.config, t.world, num_envs);
  ASSERT_EQ(env.spec().obs_dim, t.live->obs_dim());
  ASSERT_EQ(env.spec().n_actions, t.live->n_actions());
  for (int a = 0; a < t.live->n_actions(); ++a) {
    EXPECT_EQ(env.spec().action_names[a], t.live->actions()[a].name);
  }
  env.reset(seed);
  std::vector<std::unique_ptr<LiveEpisode>> live(num_envs);
  for (int i = 0; i < num_envs; ++i) live[i] = t.live->start(query_of(env.state_view(i)));
  const int D = t.live->obs_dim(), A = t.live->n_actions();
  std::vector<float> obs(D);
  std::vector<uint8_t> mask(A);
  std::vector<int32_t> actions(num_envs);
  Rng rng(seed + 1);
  int compared = 0, calls_seen = 0;
  for (int s = 0; s < steps; ++s) {
    for (int i = 0; i < num_envs; ++i) {
      live[i]->observe(obs.data(), mask.data());
      const float* eo = env.obs() + static_cast<std::size_t>(i) * D;
      for (int k = 0; k < D; ++k)
        ASSERT_EQ(std::memcmp(&obs[k], &eo[k], sizeof(float)), 0)
            << "step " << s << " env " << i << " obs[" << k << "]: live " << obs[k] << " env " << eo[k];
      ASSERT_EQ(std::memcmp(mask.data(), env.action_mask() + static_cast<std::size_t>(i) * A, A), 0);
      ++compared;
      std::vector<int> allowed;
      for (int a = 0; a < A; ++a)
        if (mask[a]) allowed.push_back(a);
      ASSERT_FALSE(allowed.empty());
      actions[i] = allowed[rng.below(allowed.size())];
    }
    env.step(actions.data());
    for (int i = 0; i < num_envs; ++i) {
      if (env.terminated()[i] || env.truncated()[i]) {
        live[i] = t.live->start(query_of(env.state_view(i)));
      } else {
        const ConductorStateView v = env.state_view(i);
        ASSERT_GT(v.n_steps, 0);
        live[i]->record_call(result_of(v.steps[v.n_steps - 1]));
        ++calls_seen;
      }
    }
  }
  EXPECT_GT(compared, steps);
  if (t.config.max_steps > 1) {
    EXPECT_GT(calls_seen, 0);
  }
}

TEST(ConductorLiveWorld, ObservationsEqualTheEnvironmentsStepByStep) {
  check_env_matches_live(make_test_world(300, 3), 4, 300, 7);
}

TEST(ConductorLiveWorld, RandomizedPoolsAndOneStepRouting) {
  check_env_matches_live(make_test_world(300, 3, "pool: {randomize: true, min_size: 2}\n"), 4, 300, 8);
  check_env_matches_live(make_test_world(300, 1), 4, 100, 9);
}

TEST(ConductorLiveWorld, BudgetCapMasksLikeTheEnvironment) {
  // A cap around the cost of a mid-priced call, so the mask actually changes.
  auto probe = make_test_world(300, 3);
  std::vector<double> costs;
  for (const auto& w : probe.spec["workers"]) costs.push_back(w["expected_cost_usd"].get<double>());
  std::sort(costs.begin(), costs.end());
  const double cap = costs[costs.size() / 2] * 1.5;
  auto t = make_test_world(300, 3, "reward: {budget: {mode: cap, cap_usd: " + std::to_string(cap) + "}}\n");
  ASSERT_TRUE(t.spec["budget_cap_usd"].is_number());
  check_env_matches_live(t, 4, 300, 10);
}

TEST(ConductorLiveWorld, RequestBudgetMasksExpensiveWorkersAndFinishRulesFollowTheEnv) {
  auto t = make_test_world(100, 3);
  LiveQuery q;
  q.text = "what is 2+2?";
  q.available.assign(t.live->workers().size(), 1);
  q.budget_usd = 0.0;  // nothing affordable except free workers
  auto ep = t.live->start(q);
  std::vector<float> obs(t.live->obs_dim());
  std::vector<uint8_t> mask(t.live->n_actions());
  ep->observe(obs.data(), mask.data());
  for (std::size_t k = 0; k < t.live->workers().size(); ++k)
    EXPECT_EQ(mask[k], t.spec["workers"][k]["expected_cost_usd"].get<double>() <= 0.0 ? 1 : 0);

  // vote: a majority of comparable answers wins; ties go to the most recent call.
  std::vector<CallResult> calls(4);
  for (int j = 0; j < 4; ++j) calls[j].worker = j;
  calls[0].answer_id = 1;
  calls[1].answer_id = 2;
  calls[2].answer_id = 1;
  calls[3].error = kTimeout;
  EXPECT_EQ(t.live->final_call("vote", calls), 2);
  EXPECT_EQ(t.live->final_call("last", calls), 2);
  calls[2].answer_id = 2;
  EXPECT_EQ(t.live->final_call("vote", calls), 2);  // 1 vs 2 (two each? no: {1}, {2,2}) -> 2
  calls[2].answer_id = 3;                           // three groups of one: the most recent wins
  EXPECT_EQ(t.live->final_call("vote", calls), 2);
  std::vector<CallResult> failed(1);
  failed[0].worker = 0;
  failed[0].error = kServerError;
  EXPECT_EQ(t.live->final_call("last", failed), -1);
  EXPECT_EQ(t.live->final_call("vote", failed), -1);
  EXPECT_EQ(t.live->final_call("most_trusted", failed), -1);
}

TEST(ConductorLiveWorld, SpecErrorsNameTheField) {
  auto t = make_test_world(100, 2);
  json bad = t.spec;
  bad.erase("cost_scale");
  EXPECT_THROW(ConductorLiveWorld::from_spec(bad, "m.json"), Error);
  bad = t.spec;
  bad["finish_rules"] = {"last", "best"};
  try {
    ConductorLiveWorld::from_spec(bad, "m.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("finish_rules"), std::string::npos) << e.what();
  }
  bad = t.spec;
  bad["workers"][0].erase("trust");
  EXPECT_THROW(ConductorLiveWorld::from_spec(bad, "m.json"), Error);
}

}  // namespace
}  // namespace conductor::serve
