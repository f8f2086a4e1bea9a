// The serving observation builder must reproduce ConductorEnv's observations float for float:
// we step the real environment with random allowed actions and rebuild every observation from
// what a gateway would know (query text, task, length, pool, and the results of the calls).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "envs/conductor_live.h"
#include "serve/http_server.h"
#include "serve/router.h"
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
  q.cost_weight = v.cost_weight;  // ignored unless the world is cost-conditioned
  q.price_factor.assign(v.price_factor, v.price_factor + v.n_workers);  // the episode's prices (faults)
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
      testing::observe(*live[i], obs, mask);
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
  testing::observe(*ep, obs, mask);
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

// from_spec(spec) must throw an error whose message contains `needle`.
void expect_spec_error(const json& spec, const std::string& needle) {
  try {
    ConductorLiveWorld::from_spec(spec, "m.json");
    ADD_FAILURE() << "accepted a spec that should fail with '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(ConductorLiveWorld, SpecErrorsNameTheField) {
  auto t = make_test_world(100, 2);
  json bad = t.spec;
  bad.erase("cost_scale");
  EXPECT_THROW(ConductorLiveWorld::from_spec(bad, "m.json"), Error);
  bad = t.spec;
  bad["finish_rules"] = {"last", "best"};
  expect_spec_error(bad, "finish_rules");
  bad = t.spec;
  bad["workers"][0].erase("trust");
  EXPECT_THROW(ConductorLiveWorld::from_spec(bad, "m.json"), Error);
  bad = t.spec;
  bad["workers"][1]["price_out_per_mtok"] = -2.0;
  expect_spec_error(bad, "world.workers[1].price_out_per_mtok");
}

// Traces without a public list price (9 of RouterBench's 11 models) export null prices: the world
// still loads, and a live call's cost falls back to the worker's mean training cost per call.
TEST(ConductorLiveWorld, UnknownListPricesLoadAndFallBackToExpectedCost) {
  auto t = make_test_world(100, 2);
  json spec = t.spec;
  spec["workers"][0]["price_in_per_mtok"] = nullptr;
  spec["workers"][0]["price_out_per_mtok"] = nullptr;
  const auto w = ConductorLiveWorld::from_spec(spec, "m.json");
  EXPECT_TRUE(std::isnan(w->price_in_per_mtok(0)));
  EXPECT_TRUE(std::isnan(w->price_out_per_mtok(0)));
  EXPECT_EQ(w->expected_call_cost_usd(0), spec["workers"][0]["expected_cost_usd"].get<double>());
  EXPECT_EQ(w->price_in_per_mtok(1), spec["workers"][1]["price_in_per_mtok"].get<double>());
  EXPECT_EQ(w->obs_dim(), t.live->obs_dim());
}

// A cost-conditioned world in sample mode (every episode its own cost weight): serving rebuilds the
// preference from the request's cost_weight exactly as the environment encodes the episode's.
// The environment of an `env` YAML mapping, its world spec and the serving world built from it.
testing::TestWorld world_from_yaml(const std::string& yaml) {
  ConfigDoc doc = ConfigDoc::load_string(yaml, "test-env.yaml");
  ConfigReader r = doc.root();
  testing::TestWorld t;
  t.config = ConductorEnvConfig::parse(r);
  t.world = ConductorWorld::build(t.config);
  t.spec = conductor_world_spec(*t.world, t.config).to_json();
  t.live = ConductorLiveWorld::from_spec(t.spec, "test-spec");
  return t;
}

testing::TestWorld cost_conditioned_world() {
  return world_from_yaml(
      "synthetic: {queries: 300, seed: 11}\nsplit: train\nmax_steps: 3\nfeatures: {hash_dim: 32, ngram_max: 2}\n"
      "reward: {w_cost: 30, w_cost_range: [3, 3000]}\n");
}

// A world whose features have the text head (features.text): the export carries the fitted head,
// and serving computes the same block as the environment for queries outside the training split.
// (Training queries carry out-of-fold predictions in the environment, by design: there the block
// differs from serving's full head.)
testing::TestWorld text_head_world(const std::string& split) {
  return world_from_yaml("synthetic: {queries: 400, seed: 5}\nsplit: " + split +
                         "\nmax_steps: 3\nfeatures: {hash_dim: 32, text: {enabled: true, char_ngrams: [0, 0]}}\n");
}

TEST(ConductorLiveWorld, TextHeadObservationsEqualTheEnvironmentsOnHeldOutQueries) {
  const auto t = text_head_world("test");
  ASSERT_TRUE(t.spec["featurizer"].contains("text"));
  ASSERT_NE(t.world->featurizer.text_head(), nullptr);
  check_env_matches_live(t, 4, 200, 5);
  // On the training split the environment's block is the out-of-fold prediction instead.
  const auto tr = text_head_world("train");
  ConductorEnv env(tr.config, tr.world, 1);
  env.reset(3);
  const ConductorStateView v = env.state_view(0);
  std::vector<float> obs(static_cast<std::size_t>(tr.live->obs_dim()));
  std::vector<uint8_t> mask(static_cast<std::size_t>(tr.live->n_actions()));
  testing::observe(*tr.live->start(query_of(v)), obs, mask);
  const int F = tr.world->feature_dim, H = tr.world->featurizer.text_head()->n_outputs();
  for (int k = 0; k < F - H; ++k) EXPECT_EQ(obs[static_cast<std::size_t>(k)], env.obs()[k]) << k;
  int differs = 0;
  for (int k = F - H; k < F; ++k) differs += obs[static_cast<std::size_t>(k)] != env.obs()[k];
  EXPECT_GT(differs, 0);
}

// env.observe_predictions: the router's predicted quality and cost of each worker (fitted on the
// training split) and its choice in the observation; the export carries the predictors
// (world.predictions) and serving writes the same floats. The block is what the router baseline
// reads: WorldPredictors' quality_prob and predicted_cost_usd of the query, the cost over
// cost_scale, and the one-hot of the router expert's choice.
TEST(ConductorLiveWorld, PredictionsBlockIsTheRoutersInputsInTrainingAndServing) {
  const auto t = world_from_yaml("synthetic: {queries: 400, seed: 5}\nsplit: test\nmax_steps: 3\n"
                                 "features: {hash_dim: 32, text: {enabled: true, char_ngrams: [0, 0]}}\n"
                                 "observe_predictions: true\n");
  ASSERT_TRUE(t.spec["predictions"].is_object());
  check_env_matches_live(t, 4, 300, 14);

  ConductorEnv env(t.config, t.world, 1);
  const ObsLayout& L = env.layout();
  const int M = env.n_workers();
  ASSERT_EQ(L.predictions_dim, 3 * M);
  EXPECT_EQ(L.mask + env.spec().n_actions, L.dim);  // the mask stays the last segment
  const ConductorWorld& W = *t.world;
  const auto P = world_predictors(W, t.config.predictors, "test");
  env.reset(3);
  int episodes = 0, advised = 0;
  std::vector<std::vector<float>> costs(static_cast<std::size_t>(M));
  for (int s = 0; s < 400 && episodes < 40; ++s) {
    const ConductorStateView v = env.state_view(0);
    if (v.n_steps == 0) {
      ++episodes;
      const float* x = W.features.data() + static_cast<std::size_t>(v.query) * W.feature_dim;
      for (int k = 0; k < M; ++k) {
        const std::size_t m = static_cast<std::size_t>(W.workers[k]);
        EXPECT_EQ(env.obs()[L.predictions + k], static_cast<float>(P->quality_prob(m, x))) << "worker " << k;
        const double c = P->predicted_cost_usd(*W.traces, static_cast<std::size_t>(v.query), m, x);
        EXPECT_EQ(env.obs()[L.predictions + M + k], static_cast<float>(c * (1.0 / W.cost_scale))) << "worker " << k;
        costs[static_cast<std::size_t>(k)].push_back(env.obs()[L.predictions + M + k]);
      }
      // The advice: a one-hot of the router expert's first call (the rule at the episode's weight).
      int32_t router = -1;
      ASSERT_TRUE(env.expert_actions(&router, Expert::kRouter));
      for (int k = 0; k < M; ++k) EXPECT_EQ(env.obs()[L.predictions + 2 * M + k], k == router ? 1.f : 0.f) << k;
      advised += env.obs()[L.predictions + 2 * M + router] == 1.f;
    }
    int32_t a = M;  // finish when allowed, else the first callable worker
    if (!v.action_mask[a])
      for (int k = 0; k < env.spec().n_actions; ++k)
        if (v.action_mask[k]) {
          a = k;
          break;
        }
    env.step(&a);
  }
  EXPECT_GE(episodes, 40);
  EXPECT_EQ(advised, episodes);
  // Per query, not per worker: the predicted cost follows the query's length and predicted output.
  std::sort(costs[0].begin(), costs[0].end());
  EXPECT_LT(costs[0].front(), costs[0].back());

  // The rest of the observation is what the environment without the block writes.
  auto off_cfg = t.config;
  off_cfg.observe_predictions = false;
  ConductorEnv off(off_cfg, t.world, 1);
  env.reset(5);
  off.reset(5);
  EXPECT_EQ(L.dim, off.layout().dim + 3 * M);
  for (int j = 0; j < L.predictions; ++j) EXPECT_EQ(env.obs()[j], off.obs()[j]) << j;
  for (int j = 0; j < env.spec().n_actions; ++j) EXPECT_EQ(env.obs()[L.mask + j], off.obs()[off.layout().mask + j]) << j;

  // Exports written before the block existed have no key: off. Damaged blocks name the field.
  json old = t.spec;
  old.erase("predictions");
  EXPECT_EQ(ConductorLiveWorld::from_spec(old, "old.json")->obs_dim(), t.live->obs_dim() - 3 * M);
  json bad = t.spec;
  bad["predictions"]["workers"].erase(0);
  expect_spec_error(bad, "world.predictions.workers: expected an array of " + std::to_string(M) + " workers");
  bad = t.spec;
  bad["predictions"]["workers"][1]["quality"]["w"].erase(0);
  expect_spec_error(bad, "world.predictions.workers[1].quality.w: expected an array of " + std::to_string(W.feature_dim));
  bad = t.spec;
  bad["predictions"]["workers"][0]["mean_cost_usd"] = "cheap";
  expect_spec_error(bad, "world.predictions.workers[0].mean_cost_usd: expected a finite number");
  bad = t.spec;
  bad["predictions"]["workers"][2]["price_out_per_mtok"] = -1;
  expect_spec_error(bad, "world.predictions.workers[2].price_out_per_mtok: expected null (unknown) or a number >= 0");
  bad = t.spec;
  bad["predictions"]["workers"][0].erase("tokens");
  expect_spec_error(bad, "world.predictions.workers[0]: missing field 'tokens'");
}

TEST(ConductorLiveWorld, CostConditionedObservationsEqualTheEnvironments) {
  const auto t = cost_conditioned_world();
  ASSERT_TRUE(t.spec["cost_conditioning"].is_object());
  EXPECT_EQ(t.spec["cost_conditioning"]["w_cost_default"], 30.0);
  EXPECT_TRUE(make_test_world(100, 2).spec["cost_conditioning"].is_null());
  check_env_matches_live(t, 4, 300, 12);
  // An export written before cost conditioning existed has no such key: the same as null.
  json old = make_test_world(100, 2).spec;
  old.erase("cost_conditioning");
  EXPECT_EQ(ConductorLiveWorld::from_spec(old, "old.json")->obs_dim(), make_test_world(100, 2).live->obs_dim());
  json bad = t.spec;
  bad["cost_conditioning"]["w_cost_default"] = 1.0;
  expect_spec_error(bad, "world.cost_conditioning");
}

TEST(ConductorLiveWorld, RouteRequestCostWeightIsCheckedAgainstTheTrainedRange) {
  const auto t = cost_conditioned_world();
  const MlpSpec spec = testing::mlp_spec_for(*t.live, {16});
  auto policy = make_mlp_policy(spec, testing::random_mlp_tensors(spec, 5, 1.0));
  Router router(std::shared_ptr<const Policy>(std::move(policy)), t.live, "v1");
  EXPECT_TRUE(std::isnan(router.parse_route_request(R"({"query": "q"})").cost_weight));
  EXPECT_EQ(router.parse_route_request(R"({"query": "q", "cost_weight": 300})").cost_weight, 300.0);
  auto status_of = [&](const std::string& body, std::string* msg) {
    try {
      router.parse_route_request(body);
    } catch (const HttpError& e) {
      *msg = e.what();
      return e.status();
    }
    return 200;
  };
  std::string msg;
  EXPECT_EQ(status_of(R"({"query": "q", "cost_weight": 1})", &msg), 400);
  EXPECT_NE(msg.find("must lie in [3.0, 3000.0]"), std::string::npos) << msg;
  EXPECT_EQ(status_of(R"({"query": "q", "cost_weight": "low"})", &msg), 400);
  EXPECT_NE(msg.find("must be a number"), std::string::npos) << msg;
  // The weight reaches the observation: the preference differs, everything else is equal.
  LiveQuery cheap = router.parse_route_request(R"({"query": "prove the theorem", "cost_weight": 3000})");
  LiveQuery rich = router.parse_route_request(R"({"query": "prove the theorem", "cost_weight": 3})");
  LiveQuery dflt = router.parse_route_request(R"({"query": "prove the theorem"})");
  std::vector<float> a(t.live->obs_dim()), b(t.live->obs_dim()), c(t.live->obs_dim());
  std::vector<uint8_t> m(t.live->n_actions());
  testing::observe(*t.live->start(cheap), a, m);
  testing::observe(*t.live->start(rich), b, m);
  testing::observe(*t.live->start(dflt), c, m);
  int differ = 0;
  for (std::size_t k = 0; k < a.size(); ++k) differ += a[k] != b[k];
  EXPECT_EQ(differ, 1);
  const RewardConfig& rc = t.config.reward;
  EXPECT_NE(std::find(a.begin(), a.end(), static_cast<float>(rc.cost_preference(3000))), a.end());
  EXPECT_NE(std::find(c.begin(), c.end(), static_cast<float>(rc.cost_preference(30))), c.end());
  // A policy trained for one cost weight refuses the field.
  const auto plain = make_test_world(100, 2);
  const MlpSpec ps = testing::mlp_spec_for(*plain.live, {16});
  Router plain_router(std::shared_ptr<const Policy>(make_mlp_policy(ps, testing::random_mlp_tensors(ps, 5))),
                      plain.live, "v1");
  try {
    plain_router.parse_route_request(R"({"query": "q", "cost_weight": 30})");
    FAIL() << "cost_weight accepted by a policy trained for one weight";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_NE(std::string(e.what()).find("needs a cost-conditioned policy"), std::string::npos) << e.what();
  }
}

// env.observe_price_changes with random price windows in training: the request's price_factors
// (current price / list price) give serving the same observation as the environment's episode,
// in the prices segment and in the log2 segment.
TEST(ConductorLiveWorld, PriceFactorsReachTheObservationLikeTheEnvironments) {
  const auto t = world_from_yaml(
      "synthetic: {queries: 300, seed: 11}\nsplit: train\nmax_steps: 3\nfeatures: {hash_dim: 32, ngram_max: 2}\n"
      "observe_price_changes: true\nfaults:\n  - {type: price_change, worker: all, factor: 3, rate: 0.05, duration: 5}\n");
  EXPECT_EQ(t.spec["observe_price_changes"], true);
  check_env_matches_live(t, 4, 300, 13);
  {  // the comparison above did meet changed prices (same seed, same episodes)
    ConductorEnv env(t.config, t.world, 4);
    env.reset(13);
    int changed = 0;
    std::vector<int32_t> a(4);
    for (int s = 0; s < 300; ++s) {
      for (int i = 0; i < 4; ++i) {
        const ConductorStateView v = env.state_view(i);
        for (int k = 0; k < v.n_workers; ++k) changed += v.price_factor[k] != 1.f;
        a[i] = env.n_workers();  // finish when allowed, else the first callable worker
        const uint8_t* m = env.action_mask() + static_cast<std::size_t>(i) * env.spec().n_actions;
        if (!m[a[i]])
          for (int k = 0; k < env.spec().n_actions; ++k)
            if (m[k]) {
              a[i] = k;
              break;
            }
      }
      env.step(a.data());
    }
    EXPECT_GT(changed, 0);
  }
  // Older exports have no such key: off.
  json old = t.spec;
  old.erase("observe_price_changes");
  EXPECT_EQ(ConductorLiveWorld::from_spec(old, "old.json")->obs_dim(), t.live->obs_dim() - t.live->spec().n_workers());
  json bad = t.spec;
  bad["observe_price_changes"] = "yes";
  expect_spec_error(bad, "world.observe_price_changes");

  const MlpSpec spec = testing::mlp_spec_for(*t.live, {16});
  Router router(std::shared_ptr<const Policy>(make_mlp_policy(spec, testing::random_mlp_tensors(spec, 5))), t.live, "v1");
  const std::string w1 = t.live->workers()[1];
  const LiveQuery q = router.parse_route_request(R"({"query": "q", "price_factors": {")" + w1 + R"(": 3}})");
  ASSERT_EQ(q.price_factor.size(), t.live->workers().size());
  for (std::size_t k = 0; k < q.price_factor.size(); ++k) EXPECT_EQ(q.price_factor[k], k == 1 ? 3.f : 1.f);
  EXPECT_TRUE(router.parse_route_request(R"({"query": "q"})").price_factor.empty());
  std::vector<float> a(t.live->obs_dim()), b(t.live->obs_dim());
  std::vector<uint8_t> m(t.live->n_actions());
  testing::observe(*t.live->start(q), a, m);
  testing::observe(*t.live->start(router.parse_route_request(R"({"query": "q"})")), b, m);
  int differ = 0;
  for (std::size_t k = 0; k < a.size(); ++k) differ += a[k] != b[k];
  EXPECT_EQ(differ, 2);  // worker 1's price and its log2 factor
  EXPECT_NE(std::find(a.begin(), a.end(), static_cast<float>(std::log2(3.0))), a.end());
  auto message_of = [&](const std::string& body) -> std::string {
    try {
      router.parse_route_request(body);
    } catch (const HttpError& e) {
      EXPECT_EQ(e.status(), 400);
      return e.what();
    }
    return "accepted";
  };
  EXPECT_NE(message_of(R"({"query": "q", "price_factors": {"nobody": 2}})").find("unknown worker 'nobody'"), std::string::npos);
  EXPECT_NE(message_of(R"({"query": "q", "price_factors": {")" + w1 + R"(": -1}})").find("price_factors." + w1),
            std::string::npos);
  EXPECT_NE(message_of(R"({"query": "q", "price_factors": [3]})").find("must be an object"), std::string::npos);
}

}  // namespace
}  // namespace conductor::serve
