// The `conductor eval` pipeline on a small synthetic world: baselines-only report, exact agreement
// between environment replay and the full-information table, and the bad-input errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <limits>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/error.h"
#include "eval/baselines.h"
#include "eval/evaluate.h"
#include "eval/metrics.h"
#include "eval/ope_policy.h"
#include "eval/simulate_logs.h"
#include "policies/export.h"
#include "tests/policies/policy_fixtures.h"
#include "tests/test_util.h"
#include "traces/catalog.h"
#include "traces/store.h"
#include "traces/synth.h"

namespace conductor::eval {
namespace {

std::shared_ptr<const TraceSet> world_traces(double validation_fraction = 0.1) {
  SynthConfig sc;
  sc.queries = 600;
  sc.seed = 11;
  sc.validation_fraction = validation_fraction;
  return std::make_shared<const TraceSet>(synthesize(sc, default_catalog()));
}

// Calls worker `k` whenever it may, otherwise takes the first allowed action.
class FixedWorkerPolicy : public Policy {
 public:
  FixedWorkerPolicy(int obs_dim, int n_actions, int k) : obs_dim_(obs_dim), n_actions_(n_actions), k_(k) {}
  ObsNeeds needs() const override { return ObsNeeds{obs_dim_, false}; }
  int n_actions() const override { return n_actions_; }
  std::string kind() const override { return "fixed"; }
  void act(const ObsBatch& obs, const ActOptions&, int32_t* actions, float* probs) const override {
    for (int i = 0; i < obs.n; ++i) {
      const uint8_t* m = obs.mask + static_cast<std::size_t>(i) * n_actions_;
      int a = m[k_] ? k_ : -1;
      for (int j = 0; j < n_actions_ && a < 0; ++j)
        if (m[j]) a = j;
      actions[i] = a;
      if (probs)
        for (int j = 0; j < n_actions_; ++j) probs[static_cast<std::size_t>(i) * n_actions_ + j] = j == a ? 1.f : 0.f;
    }
  }

 private:
  int obs_dim_, n_actions_, k_;
};

TEST(Evaluate, BaselinesOnlyReport) {
  const std::string dir = ::conductor::testing::temp_dir();
  write_traces(*world_traces(), dir + "/w.h5");
  EvalOptions o;
  o.traces_path = dir + "/w.h5";
  o.split = Split::kTest;
  o.cost_weight = 50.0;
  const json r = run_evaluation(o);
  EXPECT_EQ(r["split"], "test");
  for (const char* p : {"best_single", "oracle", "cheapest", "random", "router", "cascade"})
    ASSERT_TRUE(r["policies"].contains(p)) << p;
  EXPECT_GE(r["policies"]["oracle"]["quality"].get<double>(), r["policies"]["best_single"]["quality"].get<double>());
  EXPECT_LE(r["policies"]["cheapest"]["cost_usd"].get<double>(), r["policies"]["best_single"]["cost_usd"].get<double>() + 1e-12);
  // The best single worker's PGR is 1 and the cheapest's 0 by definition (same split).
  EXPECT_NEAR(r["policies"]["best_single"]["pgr"].get<double>(), 1.0, 1e-12);
  EXPECT_NEAR(r["policies"]["cheapest"]["pgr"].get<double>(), 0.0, 1e-12);
  // The oracle takes the best quality on every query: no single-call policy or cascade beats it.
  const double oracle_q = r["policies"]["oracle"]["quality"].get<double>();
  for (auto it = r["policies"].begin(); it != r["policies"].end(); ++it)
    EXPECT_LE((*it)["quality"].get<double>(), oracle_q + 1e-12) << it.key();
  // Frontier metrics exist for the swept families.
  for (const char* f : {"router", "cascade", "single_workers"}) {
    ASSERT_TRUE(r["frontier"].contains(f)) << f;
    EXPECT_FALSE(r["frontier"][f]["aiq"].is_null()) << f;
  }
  EXPECT_FALSE(r["frontier"]["router"]["apgr"].is_null());
  // Bootstrap intervals of every family's AIQ; no conductor, so no differences against it.
  ASSERT_TRUE(r.contains("aiq_bootstrap"));
  for (const char* f : {"router", "cascade", "single_workers", "oracle"}) {
    const json& ci = r["frontier"][f]["aiq_ci95"];
    ASSERT_EQ(ci.size(), 2u) << f;
    EXPECT_LE(ci[0].get<double>(), ci[1].get<double>()) << f;
    EXPECT_FALSE(r["frontier"][f].contains("conductor_aiq_minus_this")) << f;
  }
  const std::string md = write_report(r, dir + "/report");
  EXPECT_NE(md.find("AIQ 95% CI"), std::string::npos);
  EXPECT_NE(md.find("| oracle |"), std::string::npos);
  EXPECT_NE(read_file(dir + "/report/frontier.svg").find("<svg"), std::string::npos);
  EXPECT_EQ(json::parse(read_file(dir + "/report/report.json"))["n_queries"], r["n_queries"]);
  // Same inputs, same report.
  EXPECT_EQ(run_evaluation(o).dump(), r.dump());
}

// Two exported conductors (seeded random MLPs over the same synthetic world) form the conductor
// frontier; the report gives the paired bootstrap of its AIQ against every other family.
TEST(Evaluate, ConductorFrontierGetsPairedAiqIntervals) {
  const std::string dir = ::conductor::testing::temp_dir();
  write_traces(*world_traces(), dir + "/w.h5");
  const auto t = conductor::testing::make_test_world(600, 2);
  const MlpSpec spec = conductor::testing::mlp_spec_for(*t.live, {16});
  EvalOptions o;
  o.traces_path = dir + "/w.h5";
  o.split = Split::kTest;
  o.aiq_bootstrap = 200;
  for (uint64_t seed : {1, 2}) {
    ExportContents c;
    c.policy = mlp_exported_policy(spec, conductor::testing::random_mlp_tensors(spec, seed, 2.0));
    c.world = t.spec;
    c.env_id = "conductor";
    for (const auto& a : t.live->actions()) c.action_names.push_back(a.name);
    c.reward = {{"w_quality", 1.0}, {"w_cost", 50.0}, {"w_latency", 0.0}};
    c.training = {{"run_dir", "test"}};
    const std::string e = dir + "/export" + std::to_string(seed);
    write_export(e, c);
    o.checkpoints.push_back(e);
  }
  const json r = run_evaluation(o);
  const json& F = r["frontier"];
  EXPECT_EQ(F["conductor"]["points"], 2);
  EXPECT_EQ(r["aiq_bootstrap"]["resamples"], 200);
  ASSERT_EQ(F["conductor"]["aiq_ci95"].size(), 2u);
  EXPECT_FALSE(F["conductor"].contains("conductor_aiq_minus_this"));
  for (const char* f : {"router", "cascade", "single_workers", "best_single", "cheapest", "random", "oracle"}) {
    ASSERT_TRUE(F[f].contains("conductor_aiq_minus_this")) << f;
    const json& d = F[f]["conductor_aiq_minus_this"];
    EXPECT_NEAR(d["observed"].get<double>(), F["conductor"]["aiq"].get<double>() - F[f]["aiq"].get<double>(), 1e-12) << f;
    EXPECT_LE(d["ci95"][0].get<double>(), d["ci95"][1].get<double>()) << f;
    const double share = d["share_of_resamples_not_above"].get<double>();
    EXPECT_GE(share, 0.0);
    EXPECT_LE(share, 1.0);
  }
  const std::string md = write_report(r, dir + "/report");
  EXPECT_NE(md.find("conductor - family (95% CI; share not above)"), std::string::npos) << md;
  // The frontier coverage check runs on the conductor's points against the best single and the
  // cheapest worker, and the report lists what it finds.
  std::vector<CurvePoint> cpts;
  for (const auto& p : r["curves"]["conductor"]) cpts.push_back({p["cost_usd"].get<double>(), p["quality"].get<double>()});
  ASSERT_EQ(cpts.size(), 2u);
  const json& P = r["policies"];
  const auto expected = frontier_coverage_warnings(
      cpts, {P["best_single"]["cost_usd"].get<double>(), P["best_single"]["quality"].get<double>()},
      {P["cheapest"]["cost_usd"].get<double>(), P["cheapest"]["quality"].get<double>()});
  // These two random-weight conductors never call the cheapest worker (seeded: their cheapest point
  // costs 93 x its cost): exactly the cheap-end warning, in report.json and in report.md.
  ASSERT_EQ(expected.size(), 1u);
  EXPECT_EQ(expected[0].rfind("cheap end of the frontier not covered", 0), 0u) << expected[0];
  ASSERT_EQ(r["warnings"].size(), 1u);
  EXPECT_EQ(r["warnings"][0].get<std::string>(), "conductor " + expected[0]);
  EXPECT_NE(md.find("\nWarnings:\n- conductor " + expected[0] + ".\n"), std::string::npos) << md;
  // Same seed, same intervals; no resamples, no intervals.
  EXPECT_EQ(run_evaluation(o).dump(), r.dump());
  o.aiq_bootstrap = 0;
  const json r0 = run_evaluation(o);
  EXPECT_FALSE(r0.contains("aiq_bootstrap"));
  EXPECT_FALSE(r0["frontier"]["router"].contains("aiq_ci95"));
  EXPECT_EQ(write_report(r0, dir + "/report0").find("AIQ 95% CI"), std::string::npos);
}

// A cost-conditioned export is one checkpoint but a whole frontier: one point per --cost-weights
// value, each replayed at that weight (the preference the policy observes changes its decisions).
// The synthetic world's traces and a random MLP exported for the conductor env of `env_yaml` (a
// YAML tail after the synthetic world's keys), whose run folder does not exist: evaluation options
// on the test split that replay it from its manifest. Large weights (scale 3) so that every input
// matters for the decisions. *spec gets the export's world spec.
// `in`: the folder to write into (default: the test's fresh temporary folder, emptied by each call).
EvalOptions random_export_eval(const std::string& env_yaml, uint64_t seed, json* spec = nullptr, double w_cost = 30.0,
                               const std::string& in = "") {
  const std::string dir = in.empty() ? ::conductor::testing::temp_dir() : in;
  std::filesystem::create_directories(dir);
  write_traces(*world_traces(), dir + "/w.h5");
  ConfigDoc doc = ConfigDoc::load_string(
      "synthetic: {queries: 600, seed: 11}\nsplit: test\nmode: sequential\nfeatures: {hash_dim: 32, ngram_max: 2}\n" +
          env_yaml,
      "env.yaml");
  ConfigReader r = doc.root();
  const ConductorEnvConfig cfg = ConductorEnvConfig::parse(r);
  const auto world = ConductorWorld::build(cfg);
  const json world_spec = conductor_world_spec(*world, cfg).to_json();
  if (spec) *spec = world_spec;
  const auto live = ConductorLiveWorld::from_spec(world_spec, "spec");
  const MlpSpec ms = conductor::testing::mlp_spec_for(*live, {16});
  ExportContents c;
  c.policy = mlp_exported_policy(ms, conductor::testing::random_mlp_tensors(ms, seed, 3.0));
  c.world = world_spec;
  c.env_id = "conductor";
  for (const auto& a : live->actions()) c.action_names.push_back(a.name);
  c.reward = {{"w_quality", 1.0}, {"w_cost", w_cost}, {"w_latency", 0.0}};
  c.training = {{"run_dir", "test"}};
  write_export(dir + "/export", c);
  EvalOptions o;
  o.traces_path = dir + "/w.h5";
  o.split = Split::kTest;
  o.aiq_bootstrap = 0;
  o.checkpoints = {dir + "/export"};
  return o;
}

TEST(Evaluate, CostConditionedCheckpointGivesAPointPerCostWeight) {
  EvalOptions o = random_export_eval("max_steps: 2\nreward: {w_cost: 30, w_cost_range: [3, 3000]}\n", 3);
  o.cost_weights = {3, 30, 3000, 3};  // the default (30) and a repeat add no point
  const json rep = run_evaluation(o);
  const json& P = rep["policies"];
  ASSERT_TRUE(P.contains("conductor"));
  ASSERT_TRUE(P.contains("conductor@w_cost=3.0")) << P.dump();
  ASSERT_TRUE(P.contains("conductor@w_cost=3000.0"));
  EXPECT_FALSE(P.contains("conductor@w_cost=30.0"));  // the default weight is the headline point
  EXPECT_EQ(P["conductor"]["w_cost"], 30.0);
  EXPECT_EQ(P["conductor@w_cost=3.0"]["cost_conditioned"], true);
  EXPECT_EQ(rep["frontier"]["conductor"]["points"], 3);
  // The weight changes what the policy does.
  EXPECT_NE(P["conductor@w_cost=3.0"]["call_share"].dump(), P["conductor@w_cost=3000.0"]["call_share"].dump());
  o.cost_weights = {1};
  try {
    run_evaluation(o);
    FAIL() << "a weight outside the trained range was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside the range [3, 3000]"), std::string::npos) << e.what();
  }
}

// Issue 27 items 3 and 4: a cost weight that cannot be one is refused (a negative number was the
// "not given" marker and silently became the checkpoint's 30), and --cost-weights on checkpoints
// that are not cost-conditioned is refused instead of ignored.
TEST(Evaluate, InvalidCostWeightsAreRefusedNotReplaced) {
  EvalOptions o = random_export_eval("max_steps: 2\nreward: {w_cost: 30}\n", 3);
  auto error_of = [&](const EvalOptions& x) -> std::string {
    try {
      run_evaluation(x);
    } catch (const Error& e) {
      return e.what();
    }
    return "<no error>";
  };
  for (double bad : {-3.0, -1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    EvalOptions x = o;
    x.cost_weight = bad;
    const std::string e = error_of(x);
    EXPECT_NE(e.find("--cost-weight: "), std::string::npos) << bad << ": " << e;
    EXPECT_NE(e.find("expected a finite number >= 0"), std::string::npos) << e;
  }
  EvalOptions x = o;
  x.cost_weights = {10};
  const std::string e = error_of(x);
  EXPECT_NE(e.find("--cost-weights: no checkpoint is cost-conditioned (" + o.checkpoints[0]), std::string::npos) << e;
  EXPECT_NE(e.find("env.reward.w_cost_range"), std::string::npos) << e;
  x.cost_weights = {-5};
  EXPECT_NE(error_of(x).find("--cost-weights: -5 is not a valid cost weight"), std::string::npos) << error_of(x);
  x.cost_weights.clear();
  x.cost_weight = 0.0;  // a zero weight is a weight
  EXPECT_EQ(run_evaluation(x)["cost_weight_source"], "--cost-weight");
}

// Issue 27 item 2: `ope` on logs simulated in another world (same query ids synth-0000000, ...,
// other queries) is refused naming the first mismatching query; logs of this world are accepted.
TEST(Ope, LogsOfAnotherWorldAreRefused) {
  const EvalOptions e = random_export_eval("max_steps: 1\nreward: {w_cost: 30}\n", 3);
  const std::string dir = std::filesystem::path(e.traces_path).parent_path().string();
  SynthConfig other;
  other.queries = 600;
  other.seed = 12;
  const TraceSet world2 = synthesize(other, default_catalog());
  const TraceSet world1 = read_traces(e.traces_path);
  write_traces(simulate_logs(world2, Split::kTest, parse_logging_policy("uniform", world2), 200, 1), dir + "/logs2.h5");
  write_traces(simulate_logs(world1, Split::kTest, parse_logging_policy("uniform", world1), 200, 1), dir + "/logs1.h5");
  OpePolicyOptions o;
  o.checkpoint = e.checkpoints[0];
  o.traces_path = e.traces_path;
  o.ope.bootstrap_samples = 20;
  o.logs_path = dir + "/logs1.h5";
  EXPECT_NO_THROW(run_ope(o));
  o.logs_path = dir + "/logs2.h5";
  try {
    run_ope(o);
    FAIL() << "logs of another world were accepted";
  } catch (const Error& err) {
    const std::string m = err.what();
    EXPECT_NE(m.find(dir + "/logs2.h5: /decisions/query[0] is query 'synth-"), std::string::npos) << m;
    EXPECT_NE(m.find("another world"), std::string::npos) << m;
    EXPECT_NE(m.find(e.traces_path + "'s query"), std::string::npos) << m;
  }
}

// An export trained with env.observe_price_changes, evaluated without its run folder: the env is
// rebuilt from the manifest's world spec, price segment included, and a price scenario reaches it.
TEST(Evaluate, ExportWithThePriceObservationReplaysFromItsManifest) {
  json spec;
  EvalOptions o = random_export_eval("max_steps: 1\nobserve_price_changes: true\n", 4, &spec);
  ASSERT_EQ(spec["observe_price_changes"], true);
  const json plain = run_evaluation(o);
  ASSERT_TRUE(plain["policies"].contains("conductor"));
  // The most-called worker at 1000x its price: the policy's observation changes, so its choices do.
  const json& share = plain["policies"]["conductor"]["call_share"];
  std::string top;
  double most = -1;
  for (const auto& [w, v] : share.items())
    if (v.get<double>() > most) most = v.get<double>(), top = w;
  o.scenario = "price:" + top + ":1000";
  const json priced = run_evaluation(o);
  EXPECT_NE(plain["policies"]["conductor"]["call_share"].dump(), priced["policies"]["conductor"]["call_share"].dump());
}

// The test split of the synthetic world replayed through ConductorEnv (sequential, `max_steps`),
// next to its full-information table.
struct Replay {
  ConductorEnvConfig cfg;
  std::shared_ptr<const ConductorWorld> world;
  ReplayTable table;
};
Replay test_replay(int max_steps) {
  const auto traces = world_traces();
  Replay r;
  r.cfg.traces_path = "in-memory";
  r.cfg.split = Split::kTest;
  r.cfg.sequential = true;
  r.cfg.max_steps = max_steps;
  r.world = ConductorWorld::build(r.cfg, traces);
  r.table = ReplayTable::from_outcomes(*traces, r.world->outcomes, r.world->workers, Split::kTest);
  return r;
}

TEST(Evaluate, EnvironmentReplayMatchesTheFullInformationTable) {
  const Replay r = test_replay(1);
  const ReplayTable& table = r.table;
  ConductorEnv env(r.cfg, r.world, 7);
  for (int k : {0, 3}) {
    FixedWorkerPolicy policy(env.spec().obs_dim, env.spec().n_actions, k);
    const auto replayed = replay_policy(policy, env, table, 5);
    const auto direct = run_single(table, k);
    ASSERT_EQ(replayed.size(), direct.size());
    for (std::size_t i = 0; i < direct.size(); ++i) {
      EXPECT_NEAR(replayed[i].quality, direct[i].quality, 1e-6) << "row " << i;
      EXPECT_NEAR(replayed[i].cost_usd, direct[i].cost_usd, 1e-12) << "row " << i;
      EXPECT_NEAR(replayed[i].latency_s, direct[i].latency_s, 1e-5) << "row " << i;
      EXPECT_EQ(replayed[i].calls, direct[i].calls) << "row " << i;
    }
  }
}

// Calls worker `k` once, then takes FINISH action `finish` (M + rule index) when it is allowed.
class CallThenFinishPolicy : public Policy {
 public:
  CallThenFinishPolicy(int obs_dim, int n_actions, int k, int finish) : obs_dim_(obs_dim), n_actions_(n_actions), k_(k), finish_(finish) {}
  ObsNeeds needs() const override { return ObsNeeds{obs_dim_, false}; }
  int n_actions() const override { return n_actions_; }
  std::string kind() const override { return "call-then-finish"; }
  void act(const ObsBatch& obs, const ActOptions&, int32_t* actions, float*) const override {
    for (int i = 0; i < obs.n; ++i) {
      const uint8_t* m = obs.mask + static_cast<std::size_t>(i) * n_actions_;
      int a = m[k_] ? k_ : (m[finish_] ? finish_ : -1);
      for (int j = 0; j < n_actions_ && a < 0; ++j)
        if (m[j]) a = j;
      actions[i] = a;
    }
  }

 private:
  int obs_dim_, n_actions_, k_, finish_;
};

// One call then any finish rule answers with that call's answer: the same outcome as the single
// worker (rules differ only when several answers exist).
TEST(Evaluate, OneCallThenAnyFinishRuleEqualsTheSingleWorker) {
  const Replay r = test_replay(3);
  const ConductorEnvConfig& cfg = r.cfg;
  const ReplayTable& table = r.table;
  ConductorEnv env(cfg, r.world, 5);
  const int M = env.n_workers();
  for (int rule = 0; rule < static_cast<int>(cfg.finish_rules.size()); ++rule) {
    CallThenFinishPolicy policy(env.spec().obs_dim, env.spec().n_actions, 2, M + rule);
    const auto replayed = replay_policy(policy, env, table, 3);
    const auto direct = run_single(table, 2);
    for (std::size_t i = 0; i < direct.size(); ++i) {
      if (table.failed[table.at(i, 2)]) continue;  // a failed call has no answer to finish with
      EXPECT_NEAR(replayed[i].quality, direct[i].quality, 1e-6) << env.spec().action_names[M + rule] << " row " << i;
      EXPECT_NEAR(replayed[i].cost_usd, direct[i].cost_usd, 1e-12) << "row " << i;
    }
  }
}

// A fault scenario reaches the conductor through the environment's fault injection and the
// baselines through the table: the two must agree. A policy that always calls worker 2 replays,
// under each scenario on worker 2, exactly as the single-worker baseline on the faulted table.
TEST(Evaluate, ScenarioFaultsAgreeBetweenEnvironmentAndTable) {
  for (const char* text : {"down:W", "slow:W:5", "price:W:3"}) {
    Replay r = test_replay(1);
    const std::string w = r.world->worker_names[2];
    std::string spec = text;
    spec.replace(spec.find('W'), 1, w);
    const Scenario sc = parse_scenario(spec);
    ReplayTable faulted = r.table;
    apply_scenario(sc, faulted);
    ConductorEnvConfig cfg = r.cfg;
    add_scenario_fault(sc, cfg);
    ConductorEnv env(cfg, r.world, 7);
    FixedWorkerPolicy policy(env.spec().obs_dim, env.spec().n_actions, 2);
    const auto replayed = replay_policy(policy, env, faulted, 5);
    const auto direct = run_single(faulted, 2);
    const auto clean = run_single(r.table, 2);
    ASSERT_EQ(replayed.size(), direct.size());
    double q = 0, c = 0, c0 = 0, l = 0, l0 = 0;
    for (std::size_t i = 0; i < direct.size(); ++i) {
      EXPECT_NEAR(replayed[i].quality, direct[i].quality, 1e-6) << spec << " row " << i;
      EXPECT_NEAR(replayed[i].cost_usd, direct[i].cost_usd, 1e-12) << spec << " row " << i;
      EXPECT_NEAR(replayed[i].latency_s, direct[i].latency_s, 1e-4) << spec << " row " << i;
      q += direct[i].quality;
      c += direct[i].cost_usd;
      c0 += clean[i].cost_usd;
      l += direct[i].latency_s;
      l0 += clean[i].latency_s;
    }
    if (sc.kind == Scenario::kDown) {
      EXPECT_EQ(q, 0.0);
      EXPECT_EQ(c, 0.0);
    } else if (sc.kind == Scenario::kSlow) {
      EXPECT_NEAR(l, 5 * l0, 1e-6 * l);
    } else {
      EXPECT_NEAR(c, 3 * c0, 1e-9 * c);
    }
  }
}

TEST(Evaluate, AnnouncedOutageIsAvoidedByRouterAndCascade) {
  const std::string dir = ::conductor::testing::temp_dir();
  write_traces(*world_traces(), dir + "/w.h5");
  EvalOptions o;
  o.traces_path = dir + "/w.h5";
  o.cost_weight = 0.0;  // the router picks the best predicted quality: it relies on the strong worker
  o.aiq_bootstrap = 0;
  const json clean = run_evaluation(o);
  const std::string strong = clean["strong_worker"];
  ASSERT_GT(clean["policies"]["router"]["call_share"].value(strong, 0.0), 0.0);
  o.scenario = "down:" + strong;
  const json down = run_evaluation(o);
  EXPECT_EQ(down["scenario"], "down:" + strong);
  EXPECT_EQ(down["policies"]["best_single"]["quality"].get<double>(), 0.0);
  EXPECT_EQ(down["policies"]["best_single"]["cost_usd"].get<double>(), 0.0);
  // Unannounced: the router still calls it and loses those answers.
  EXPECT_GT(down["policies"]["router"]["call_share"].value(strong, 0.0), 0.0);
  EXPECT_LT(down["policies"]["router"]["quality"].get<double>(), clean["policies"]["router"]["quality"].get<double>());
  o.scenario = "down-announced:" + strong;
  const json announced = run_evaluation(o);
  EXPECT_EQ(announced["policies"]["router"]["call_share"].value(strong, 0.0), 0.0);
  for (const auto& w : announced["policies"]["cascade"]["chain"]) EXPECT_NE(w.get<std::string>(), strong);
  EXPECT_GT(announced["policies"]["router"]["quality"].get<double>(), down["policies"]["router"]["quality"].get<double>());
  // Bad scenarios name what was expected.
  for (const char* bad : {"down", "gone:x", "slow:x", "price:x:-1"}) {
    o.scenario = bad;
    EXPECT_THROW(run_evaluation(o), Error) << bad;
  }
  o.scenario = "down:no-such-worker";
  try {
    run_evaluation(o);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-worker"), std::string::npos) << e.what();
  }
}

TEST(Evaluate, WorkerMismatchIsNamed) {
  const auto traces = world_traces();
  ConductorEnvConfig cfg;
  cfg.traces_path = "eval.h5";
  cfg.split = Split::kTest;
  cfg.sequential = true;
  const auto world = ConductorWorld::build(cfg, traces);
  ConductorEnv env(cfg, world, 2);
  ConductorCheckpoint ck;
  ck.path = "runs/x";
  ck.env = cfg;
  ck.policy = std::make_unique<FixedWorkerPolicy>(env.spec().obs_dim, env.spec().n_actions, 0);
  ck.trained_workers = world->worker_names;
  EXPECT_NO_THROW(check_compatible(ck, env, "eval.h5"));
  ck.trained_workers[1] = "gpt-imaginary";
  try {
    check_compatible(ck, env, "eval.h5");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("missing from the traces: gpt-imaginary"), std::string::npos) << msg;
    EXPECT_NE(msg.find("not known to the checkpoint: " + world->worker_names[1]), std::string::npos) << msg;
  }
  // Caught before any environment is built, too.
  try {
    check_workers_present(ck, *traces, "eval.h5");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing from the traces eval.h5: gpt-imaginary"), std::string::npos) << e.what();
  }
  // Same names, other shape (e.g. another feature configuration).
  ck.trained_workers = world->worker_names;
  ck.policy = std::make_unique<FixedWorkerPolicy>(env.spec().obs_dim + 1, env.spec().n_actions, 0);
  EXPECT_THROW(check_compatible(ck, env, "eval.h5"), Error);
}

// --select-on validation: the checkpoints sharing a label are candidates; each one's validation
// reward is what evaluating it alone on validation gives, the best is the one evaluated on test
// (exactly as if it had been given alone), and the report records the table.
TEST(Evaluate, SelectionOnValidationKeepsTheCandidateWithTheBestValidationReward) {
  const std::string dir = ::conductor::testing::temp_dir();
  std::vector<EvalOptions> alone;
  for (uint64_t seed : {3, 4, 5})
    alone.push_back(random_export_eval("max_steps: 2\n", seed, nullptr, 30.0, dir + "/c" + std::to_string(seed)));
  std::vector<double> reward;
  for (auto o : alone) {
    o.split = Split::kValidation;
    const json r = run_evaluation(o);
    const json& c = r["policies"]["conductor"];
    reward.push_back(c["quality"].get<double>() - 30.0 * c["cost_usd"].get<double>());
  }
  const std::size_t best = static_cast<std::size_t>(std::max_element(reward.begin(), reward.end()) - reward.begin());
  ASSERT_GT(reward[best], *std::min_element(reward.begin(), reward.end()) + 1e-6) << "the candidates must differ";
  ASSERT_NE(best, 0u) << "the best candidate must not be the first given (ties keep the first)";
  EvalOptions o = alone[0];
  o.checkpoints = {alone[0].checkpoints[0], alone[1].checkpoints[0], alone[2].checkpoints[0]};
  o.labels = {"w30", "w30", "w30"};
  o.select_on = Split::kValidation;
  const json r = run_evaluation(o);
  const json& S = r["selection"];
  EXPECT_EQ(S["split"], "validation");
  ASSERT_EQ(S["groups"].size(), 1u);
  const json& g = S["groups"][0];
  EXPECT_EQ(g["label"], "w30");
  ASSERT_EQ(g["candidates"].size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_NEAR(g["candidates"][i]["reward"].get<double>(), reward[i], 1e-9) << i;
  const std::string chosen = g["chosen"].get<std::string>();
  EXPECT_EQ(chosen, g["candidates"][best]["checkpoint"].get<std::string>());
  EXPECT_EQ(r["policies"]["conductor"]["checkpoint"].get<std::string>(), chosen);
  EXPECT_EQ(r["frontier"]["conductor"]["points"], 1);
  const json solo = run_evaluation(alone[best]);
  for (const char* k : {"quality", "cost_usd", "calls_per_query"})
    EXPECT_EQ(r["policies"]["conductor"][k], solo["policies"]["conductor"][k]) << k;
  const std::string md = write_report(r, dir + "/report");
  EXPECT_NE(md.find("### Selection on the validation split"), std::string::npos) << md;
  EXPECT_NE(md.find("| yes |"), std::string::npos) << md;

  // Two labels: one point each, in the order first given.
  o.labels = {"a", "b", "a"};
  const json two = run_evaluation(o);
  ASSERT_EQ(two["selection"]["groups"].size(), 2u);
  EXPECT_EQ(two["selection"]["groups"][0]["label"], "a");
  EXPECT_EQ(two["selection"]["groups"][1]["candidates"].size(), 1u);
  EXPECT_EQ(two["frontier"]["conductor"]["points"], 2);
}

TEST(Evaluate, SelectionRefusesTestSplitsMissingLabelsAndMixedRewards) {
  const std::string dir = ::conductor::testing::temp_dir();
  const EvalOptions a = random_export_eval("max_steps: 2\n", 3, nullptr, 30.0, dir + "/a");
  const EvalOptions b = random_export_eval("max_steps: 2\n", 4, nullptr, /*w_cost=*/50.0, dir + "/b");
  EvalOptions o = a;
  o.checkpoints = {a.checkpoints[0], b.checkpoints[0]};
  o.labels = {"w", "w"};
  o.select_on = Split::kTest;
  ::conductor::testing::expect_error([&] { run_evaluation(o); }, "--select-on test: candidates are chosen on a split carved");
  o.select_on = Split::kValidation;
  o.split = Split::kValidation;
  ::conductor::testing::expect_error([&] { run_evaluation(o); }, "--select-on validation with --split validation");
  o.split = Split::kTest;
  o.labels.clear();
  ::conductor::testing::expect_error([&] { run_evaluation(o); }, "--select-on validation: give --checkpoint and --label");
  o.labels = {"w", "w"};
  ::conductor::testing::expect_error([&] { run_evaluation(o); },
                                     {"the candidates labelled 'w' were trained for different rewards",
                                      "w_cost 30", "w_cost 50", "give each cost weight its own label"});
  // Traces without a validation split: named, with the way to carve one.
  write_traces(*world_traces(/*validation_fraction=*/0.0), dir + "/nv.h5");
  o.traces_path = dir + "/nv.h5";
  o.labels = {"w", "x"};
  ::conductor::testing::expect_error([&] { run_evaluation(o); },
                                     {dir + "/nv.h5: --select-on validation: the trace file has no validation split",
                                      "carve_validation.py"});
}

// The environment's cascade expert is `conductor eval`'s cascade baseline: followed through the
// environment (sequential, full information) it gives the baseline's outcome on every test query.
class ExpertPolicy : public Policy {
 public:
  ExpertPolicy(const ConductorEnv& env, Expert expert) : env_(env), expert_(expert) {}
  ObsNeeds needs() const override { return ObsNeeds{env_.spec().obs_dim, false}; }
  int n_actions() const override { return env_.spec().n_actions; }
  std::string kind() const override { return "expert"; }
  void act(const ObsBatch& obs, const ActOptions&, int32_t* actions, float* probs) const override {
    CONDUCTOR_CHECK(obs.n == env_.num_envs());
    ASSERT_TRUE(env_.expert_actions(actions, expert_));
    if (probs)
      for (int i = 0; i < obs.n; ++i)
        for (int j = 0; j < n_actions(); ++j) probs[static_cast<std::size_t>(i) * n_actions() + j] = j == actions[i];
  }

 private:
  const ConductorEnv& env_;
  Expert expert_;
};

TEST(Evaluate, CascadeExpertIsTheCascadeBaseline) {
  for (double w : {5.0, 50.0, 500.0}) {
    Replay r = test_replay(6);
    r.cfg.reward.w_cost = w;
    ConductorEnv env(r.cfg, r.world, 7);
    const auto predictors = world_predictors(*r.world, r.cfg.predictors, "test");
    const auto& W = *r.world;
    const ReplayTable train = ReplayTable::from_outcomes(*W.traces, W.outcomes, W.workers, Split::kTrain);
    const auto pred_train = predict(train, *W.traces, *predictors, W.features, W.feature_dim, W.workers);
    const auto pred_test = predict(r.table, *W.traces, *predictors, W.features, W.feature_dim, W.workers);
    const Cascade cascade = Cascade::fit(train, pred_train, pareto_chain(train.mean_quality(), train.mean_cost()));
    ASSERT_GE(cascade.chain().size(), 2u);
    ASSERT_LE(cascade.chain().size(), 6u);
    const auto direct = cascade.run(r.table, pred_test, cascade.best_threshold(train, pred_train, w));
    // The expert's once-replayed sweep picks the baseline's threshold at every weight.
    const CascadeSweep sweep(cascade, train, pred_train);
    for (double v : {0.0, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 1e4, 1e5})
      EXPECT_EQ(sweep.best_threshold(v), cascade.best_threshold(train, pred_train, v)) << "w " << v;
    ExpertPolicy policy(env, Expert::kCascade);
    const auto replayed = replay_policy(policy, env, r.table, 5);
    ASSERT_EQ(replayed.size(), direct.size());
    int escalated = 0;
    for (std::size_t i = 0; i < direct.size(); ++i) {
      EXPECT_EQ(replayed[i].calls, direct[i].calls) << "w " << w << " row " << i;
      EXPECT_NEAR(replayed[i].quality, direct[i].quality, 1e-6) << "w " << w << " row " << i;
      EXPECT_NEAR(replayed[i].cost_usd, direct[i].cost_usd, 1e-12) << "w " << w << " row " << i;
      escalated += direct[i].calls.size() > 1;
    }
    if (w == 50.0) {  // the comparison covers escalations and stops
      EXPECT_GT(escalated, 5);
      EXPECT_LT(escalated, static_cast<int>(direct.size()) - 5);
    }
  }
}

TEST(Evaluate, EmptySplitIsNamed) {
  const std::string dir = ::conductor::testing::temp_dir();
  write_traces(*world_traces(/*validation_fraction=*/0.0), dir + "/w.h5");
  EvalOptions o;
  o.traces_path = dir + "/w.h5";
  o.split = Split::kValidation;
  try {
    run_evaluation(o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("validation"), std::string::npos) << msg;
    EXPECT_NE(msg.find("no queries"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace conductor::eval
