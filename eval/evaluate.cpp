#include "eval/evaluate.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <filesystem>
#include <limits>
#include <set>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "eval/baselines.h"
#include "core/stats.h"
#include "envs/episode_loop.h"
#include "world/faults.h"
#include "policies/export.h"
#include "policies/registry.h"
#include "traces/store.h"

namespace conductor::eval {

namespace fs = std::filesystem;

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}
}  // namespace

namespace {

// The env configuration of an export without its run folder: rebuilt from the manifest's world
// spec (workers, max_steps, finish rules, featurizer) and reward weights.
ConductorEnvConfig env_from_manifest(const json& m, const std::string& dir) {
  const std::string src = dir + "/manifest.json";
  if (!m.contains("world") || m["world"].is_null())
    fail(src, ": the export has no conductor world spec (env '", m.value("env_id", std::string("?")),
         "'): `conductor eval` replays conductor policies");
  const ConductorWorldSpec w = ConductorWorldSpec::from_json(m["world"], src);
  ConductorEnvConfig c;
  c.workers = w.worker_names();
  c.max_steps = w.max_steps;
  c.finish_rules = w.finish_rules;
  c.default_finish = w.default_finish;
  try {
    // The featurizer's configuration (its text head, if any, is refitted on the replayed traces'
    // train split, as for a run folder).
    c.features = QueryFeaturizer::from_json(m["world"].at("featurizer")).config();
    if (m.contains("reward") && !m["reward"].is_null()) {
      c.reward.w_quality = m["reward"].at("w_quality").get<double>();
      c.reward.w_cost = m["reward"].at("w_cost").get<double>();
      c.reward.w_latency = m["reward"].at("w_latency").get<double>();
    }
  } catch (const json::exception& e) {
    fail(src, ": incomplete world spec for replay: ", e.what());
  }
  if (w.budget_cap_usd >= 0) {
    c.reward.budget.mode = BudgetMode::kCap;
    c.reward.budget.cap_usd = w.budget_cap_usd;
  }
  c.observe_price_changes = w.observe_price_changes;
  c.observe_predictions = w.predictions != nullptr;  // refitted on the replayed traces' train split
  if (w.cost_conditioning.cost_conditioned()) {
    c.reward.w_cost_min = w.cost_conditioning.w_cost_min;
    c.reward.w_cost_max = w.cost_conditioning.w_cost_max;
    c.reward.w_cost = w.cost_conditioning.w_cost;
  }
  return c;
}

ConductorEnvConfig env_from_run_config(const std::string& run_dir) {
  ConfigDoc doc = ConfigDoc::load_file(run_dir + "/config.yaml");
  ConfigReader root = doc.root();
  ConfigReader env = root.child("env");
  const std::string id = env.required<std::string>("id");
  if (id != "conductor")
    fail(run_dir, "/config.yaml: env.id is '", id, "': `conductor eval` replays conductor policies (env.id: conductor)");
  env.get<int>("num_envs", 8);
  return ConductorEnvConfig::parse(env);
}

}  // namespace

ConductorCheckpoint load_conductor_checkpoint(const std::string& path) {
  ConductorCheckpoint ck;
  ck.path = path;
  if (is_export_dir(path)) {
    // An export: the policy and its worker list come from the verified bundle; the env config from
    // its run folder when that still exists (exact), else from the manifest's world spec.
    const LoadedExport bundle = load_export_bundle(path);
    ck.checkpoint_dir = path;
    ck.policy = bundle.policy;
    const json& m = bundle.manifest;
    const std::string run_dir =
        m.contains("training") && m["training"].is_object() ? m["training"].value("run_dir", std::string()) : "";
    if (!run_dir.empty() && fs::exists(fs::path(run_dir) / "config.yaml")) {
      ck.run_dir = run_dir;
      ck.env = env_from_run_config(run_dir);
    } else {
      ck.env = env_from_manifest(m, path);
    }
    if (m.contains("world") && m["world"].is_object() && m["world"].contains("workers"))
      for (const auto& wk : m["world"]["workers"]) ck.trained_workers.push_back(wk.at("name").get<std::string>());
    return ck;
  }
  ck.checkpoint_dir = resolve_checkpoint_dir(path);
  for (const fs::path& cand : {fs::path(path), fs::path(ck.checkpoint_dir).parent_path().parent_path(),
                               fs::path(ck.checkpoint_dir)}) {
    if (fs::exists(cand / "config.yaml")) {
      ck.run_dir = cand.string();
      break;
    }
  }
  if (ck.run_dir.empty())
    fail(path, ": no config.yaml found in the run folder of checkpoint ", ck.checkpoint_dir,
         " (eval needs the run's env configuration to rebuild the observation)");
  ck.policy = load_policy(path);
  ck.env = env_from_run_config(ck.run_dir);
  // The worker list the policy was trained on: the names given in the config, or every model of
  // the training traces ("all").
  if (!ck.env.workers.empty()) {
    ck.trained_workers = ck.env.workers;
  } else if (!ck.env.synthetic && fs::exists(ck.env.traces_path)) {
    ck.trained_workers = read_traces(ck.env.traces_path).model_name;
  }
  return ck;
}

ConductorEnvConfig replay_env_config(const ConductorCheckpoint& ck, const std::string& traces_path, Split split) {
  ConductorEnvConfig c = ck.env;
  c.traces_path = traces_path;
  c.synthetic = false;
  c.split = split;
  c.sequential = true;
  c.faults.clear();
  c.randomize_pool = false;
  c.reward_model = RewardModelKind::kReplay;
  // Budget caps mask workers, which is part of the policy's deployed behaviour: kept. The Lagrange
  // multiplier only shapes training rewards and does not change observations: kept too.
  return c;
}

void check_compatible(const ConductorCheckpoint& ck, const ConductorEnv& env, const std::string& traces_path) {
  const auto& have = env.world().worker_names;
  if (!ck.trained_workers.empty() && ck.trained_workers != have) {
    std::vector<std::string> missing, extra;
    for (const auto& w : ck.trained_workers)
      if (std::find(have.begin(), have.end(), w) == have.end()) missing.push_back(w);
    for (const auto& w : have)
      if (std::find(ck.trained_workers.begin(), ck.trained_workers.end(), w) == ck.trained_workers.end())
        extra.push_back(w);
    std::string msg = "checkpoint " + ck.path + " was trained on workers [" + join(ck.trained_workers) +
                      "] but the traces " + traces_path + " give [" + join(have) + "]";
    if (!missing.empty()) msg += "; missing from the traces: " + join(missing);
    if (!extra.empty()) msg += "; not known to the checkpoint: " + join(extra);
    if (missing.empty() && extra.empty()) msg += " (same workers in another order)";
    fail(msg);
  }
  check_obs_fits(*ck.policy, "checkpoint " + ck.path, env.observations(),
                 "its environment on " + traces_path + " (actions " + join(env.spec().action_names) + ")");
}

void check_workers_present(const ConductorCheckpoint& ck, const TraceSet& traces, const std::string& traces_path) {
  std::vector<std::string> missing;
  for (const auto& w : ck.trained_workers)
    if (std::find(traces.model_name.begin(), traces.model_name.end(), w) == traces.model_name.end()) missing.push_back(w);
  if (!missing.empty())
    fail("checkpoint ", ck.path, " was trained on workers [", join(ck.trained_workers), "]; missing from the traces ",
         traces_path, ": ", join(missing), " (the traces have [", join(traces.model_name), "])");
}

std::vector<QueryResult> replay_policy(const Policy& policy, ConductorEnv& env, const ReplayTable& table,
                                       uint64_t seed, bool greedy) {
  const int n = env.num_envs();
  const int A = env.spec().n_actions;
  const int M = env.n_workers();
  std::vector<std::vector<int>> calls(n);
  std::vector<QueryResult> by_query(env.world().traces->n_queries());
  std::vector<uint8_t> seen(by_query.size(), 0);
  env.reset(seed);
  const std::size_t max_steps = (env.split_size() + n) * static_cast<std::size_t>(env.spec().max_episode_steps + 1) + 16;
  uint64_t steps = 0;
  run_env_loop(
      env,
      [&](const ObsBatch& obs, int32_t* actions) {
        policy.act(obs, ActOptions{greedy, derive_seed(seed, ++steps)}, actions, nullptr);
        for (int i = 0; i < n; ++i) {
          CONDUCTOR_CHECK(obs.mask[static_cast<std::size_t>(i) * A + actions[i]], "policy chose a masked action");
          if (actions[i] < M) calls[i].push_back(actions[i]);
        }
      },
      [&](VectorEnv&, const int32_t*) {
        for (const auto& rec : env.finished()) {
          const auto q = static_cast<std::size_t>(rec.extras[ConductorEnv::kQueryIndex]);
          const bool first_pass = rec.extras[ConductorEnv::kPass] == 0.0;
          if (first_pass && !seen[q]) {
            QueryResult r;
            r.quality = rec.extras[ConductorEnv::kQuality];
            r.cost_usd = rec.extras[ConductorEnv::kCostUsd];
            r.latency_s = rec.extras[ConductorEnv::kLatencyS];
            r.calls = calls[rec.env_index];
            by_query[q] = std::move(r);
            seen[q] = 1;
          }
          calls[rec.env_index].clear();
        }
      },
      [&] { return env.sequential_pass_complete(); }, static_cast<int64_t>(max_steps),
      "replay over the " + std::string(split_name(env.config().split)) + " split");
  std::vector<QueryResult> out;
  out.reserve(table.n_queries());
  for (std::size_t q : table.query_index) {
    CONDUCTOR_CHECK(seen[q], "query ", q, " was not replayed");
    out.push_back(by_query[q]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

namespace {

struct Ref {
  int strong = 0, weak = 0;
  double q_strong = 0, q_weak = 0, c_strong = 0;
  std::vector<std::string> workers;
};

json metrics_json(const PolicyMetrics& m, const Ref& ref) {
  json j;
  j["quality"] = m.quality;
  j["cost_usd"] = m.cost_usd;
  j["total_cost_usd"] = m.total_cost_usd;
  j["latency_p50_s"] = m.latency_p50_s;
  j["latency_p95_s"] = m.latency_p95_s;
  j["latency_p99_s"] = m.latency_p99_s;
  j["calls_per_query"] = m.calls_per_query;
  json share = json::object();
  for (std::size_t k = 0; k < m.call_share.size(); ++k)
    if (m.call_share[k] > 0) share[ref.workers[k]] = m.call_share[k];
  j["call_share"] = share;
  j["strong_call_fraction"] = m.strong_call_fraction;
  j["pgr"] = std::fabs(ref.q_strong - ref.q_weak) > 1e-12 ? num(pgr(m.quality, ref.q_weak, ref.q_strong)) : json(nullptr);
  j["cost_saved_vs_best_single"] =
      m.quality >= ref.q_strong - 1e-12 ? num(1.0 - m.cost_usd / ref.c_strong) : json(nullptr);
  return j;
}

json curve_point(const std::string& param_name, double param, const PolicyMetrics& m, const Ref& ref) {
  json p = {{param_name, param}, {"quality", m.quality}, {"cost_usd", m.cost_usd},
            {"strong_call_fraction", m.strong_call_fraction}, {"calls_per_query", m.calls_per_query}};
  p["pgr"] = std::fabs(ref.q_strong - ref.q_weak) > 1e-12 ? num(pgr(m.quality, ref.q_weak, ref.q_strong)) : json(nullptr);
  return p;
}

}  // namespace

Scenario parse_scenario(const std::string& text) {
  Scenario sc;
  if (text.empty() || text == "none") return sc;
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const auto colon = text.find(':', start);
    parts.push_back(text.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  const std::string forms = "none, down:WORKER, down-announced:WORKER, slow:WORKER:FACTOR or price:WORKER:FACTOR";
  static const std::map<std::string, Scenario::Kind> kinds = {
      {"down", Scenario::kDown}, {"down-announced", Scenario::kDownAnnounced}, {"slow", Scenario::kSlow},
      {"price", Scenario::kPrice}};
  const auto kind = kinds.find(parts[0]);
  if (kind == kinds.end()) fail("--scenario '", text, "': unknown kind '", parts[0], "'; expected ", forms);
  sc.kind = kind->second;
  const bool factored = sc.kind == Scenario::kSlow || sc.kind == Scenario::kPrice;
  if (parts.size() != (factored ? 3u : 2u) || parts[1].empty())
    fail("--scenario '", text, "': expected ", forms);
  sc.worker = parts[1];
  if (factored) {
    char* end = nullptr;
    sc.factor = std::strtod(parts[2].c_str(), &end);
    if (parts[2].empty() || *end != '\0' || !(sc.factor > 0) || !std::isfinite(sc.factor))
      fail("--scenario '", text, "': factor '", parts[2], "' is not a positive number");
  }
  return sc;
}

// The scenario as an environment fault lasting the whole split (every sub-environment's episodes).
static FaultSpec scenario_fault(const Scenario& sc) {
  FaultSpec f;
  f.worker = sc.worker;
  f.where = "--scenario";
  f.worker_where = "--scenario";
  constexpr int64_t kForever = int64_t(1) << 50;
  if (sc.kind == Scenario::kDown || sc.kind == Scenario::kDownAnnounced) {
    f.kind = FaultKind::kOutage;
    f.start = 0;
    f.duration = kForever;
    f.timeout_s = 30.0;
    f.announced = sc.kind == Scenario::kDownAnnounced;
  } else if (sc.kind == Scenario::kSlow) {
    f.kind = FaultKind::kLatencySpike;
    f.start = 0;
    f.duration = kForever;
    f.factor = sc.factor;
  } else {
    f.kind = FaultKind::kPriceChange;
    f.at_episode = 0;
    f.factor = sc.factor;
  }
  return f;
}

void add_scenario_fault(const Scenario& sc, ConductorEnvConfig& cfg) {
  if (sc.kind != Scenario::kNone) cfg.faults.push_back(scenario_fault(sc));
}

int apply_scenario(const Scenario& sc, ReplayTable& table) {
  if (sc.kind == Scenario::kNone) return -1;
  int k = -1;
  for (std::size_t m = 0; m < table.n_workers(); ++m)
    if (table.workers[m] == sc.worker) k = static_cast<int>(m);
  if (k < 0) fail("--scenario: worker '", sc.worker, "' is not one of [", join(table.workers), "]");
  apply_faults({scenario_fault(sc)}, table);  // the environment's fault, on every cell (world/faults.h)
  return k;
}

namespace {

// The stages of `conductor eval` (run_evaluation): load, replay (the conductor checkpoints),
// baselines, frontiers, intervals, report. They share one Evaluation: the loaded inputs, the report
// being built and the per-query outcomes of every frontier point.
struct Evaluation {
  explicit Evaluation(const EvalOptions& options) : o(options) {}
  const EvalOptions& o;
  std::shared_ptr<const TraceSet> traces;
  std::vector<ConductorCheckpoint> cks;
  std::vector<std::string> labels;              // of cks (after selection); empty = their paths
  std::shared_ptr<const ConductorWorld> world;  // of the first checkpoint's configuration
  ReplayTable test, train;                      // full-information tables of the split and of train
  std::shared_ptr<const WorldPredictors> predictors;
  std::size_t M = 0;                            // workers
  Ref ref;                                      // strong / weak reference workers (chosen on train)
  std::vector<double> train_q, train_c;         // mean quality and cost per worker on train
  Scenario scenario;
  int fault_worker = -1;
  double cost_weight = 0.0;
  json report;
  json policies = json::object();
  json curves = json::object();
  std::map<std::string, std::vector<PointOutcomes>> outcomes;  // per family, for the AIQ bootstrap

  // Records a frontier point's per-query outcomes under `family`; returns `results`.
  const std::vector<QueryResult>& keep(const std::string& family, const std::vector<QueryResult>& results) {
    PointOutcomes p;
    for (const auto& r : results) {
      p.cost.push_back(r.cost_usd);
      p.quality.push_back(r.quality);
    }
    outcomes[family].push_back(std::move(p));
    return results;
  }
  // Summarizes `results` as policies[name].
  PolicyMetrics add(const std::string& name, const std::vector<QueryResult>& results) {
    const auto m = summarize(results, M, ref.strong);
    policies[name] = metrics_json(m, ref);
    return m;
  }
};

struct Frontiers {
  std::map<std::string, std::vector<CurvePoint>> cq;  // cost-quality points per family
  json frontier = json::object();
  std::map<std::string, double> observed_aiq;
  double c_max = 0;                                   // the common cost range is [0, c_max]
};

CurvePoint point_of(const json& p) { return CurvePoint{p["cost_usd"].get<double>(), p["quality"].get<double>()}; }

void check_options(const EvalOptions& o) {
  if (!o.labels.empty() && o.labels.size() != o.checkpoints.size())
    fail("--label was given ", o.labels.size(), " times for ", o.checkpoints.size(), " checkpoints");
  if (o.cost_weight && !(std::isfinite(*o.cost_weight) && *o.cost_weight >= 0))
    fail("--cost-weight: ", *o.cost_weight, " is not a valid cost weight: expected a finite number >= 0 (USD per unit "
         "of quality; leave it out to use the first checkpoint's w_cost / w_quality)");
  for (double cw : o.cost_weights)
    if (!(std::isfinite(cw) && cw >= 0))
      fail("--cost-weights: ", cw, " is not a valid cost weight: expected finite numbers >= 0 (USD per unit of quality)");
  if (!o.cost_weights.empty() && o.checkpoints.empty())
    fail("--cost-weights: no --checkpoint was given; --cost-weights evaluates cost-conditioned checkpoints (trained "
         "with env.reward.w_cost_range) at other cost weights");
  if (o.select_on) {
    const std::string s = split_name(*o.select_on);
    if (*o.select_on == Split::kTest)
      fail("--select-on test: candidates are chosen on a split carved from the training data (validation, or train), "
           "never on test");
    if (*o.select_on == o.split)
      fail("--select-on ", s, " with --split ", s, ": the chosen checkpoints would be scored on the queries that chose "
           "them; evaluate on another split (e.g. --select-on validation --split test)");
    if (o.checkpoints.empty() || o.labels.empty())
      fail("--select-on ", s, ": give --checkpoint and --label; checkpoints that share a label are the candidates for "
           "one frontier point");
    if (!o.cost_weights.empty())
      fail("--select-on and --cost-weights together: selection compares checkpoints at their own cost weight; "
           "leave out --cost-weights");
  }
}

// Stage "select" (--select-on SPLIT): the checkpoints that share a label are candidates for one
// point; each is replayed greedily on the selection split, and the one with the highest mean reward
// at the candidates' common reward weights is kept (ties: the first given). Records the table.
void select_candidates(Evaluation& e) {
  const EvalOptions& o = e.o;
  e.labels = o.labels;
  if (!o.select_on) return;
  const Split sel = *o.select_on;
  if (e.traces->split_indices(sel).empty())
    fail(o.traces_path, ": --select-on ", split_name(sel), ": the trace file has no ", split_name(sel),
         " split; carve one from the training queries before importing (experiments/llmrouter/carve_validation.py)");
  std::vector<std::string> order;
  std::map<std::string, std::vector<std::size_t>> groups;
  for (std::size_t i = 0; i < e.cks.size(); ++i) {
    if (!groups.count(o.labels[i])) order.push_back(o.labels[i]);
    groups[o.labels[i]].push_back(i);
  }
  std::vector<ConductorCheckpoint> kept;
  json table = json::array();
  for (const auto& label : order) {
    const auto& idx = groups[label];
    const RewardConfig& r0 = e.cks[idx[0]].env.reward;
    json cands = json::array();
    std::size_t best = idx[0];
    double best_reward = -std::numeric_limits<double>::infinity();
    for (std::size_t i : idx) {
      const ConductorCheckpoint& ck = e.cks[i];
      const RewardConfig& rc = ck.env.reward;
      if (rc.cost_conditioned())
        fail("--select-on: checkpoint ", ck.path, " is cost-conditioned (env.reward.w_cost_range): selection compares "
             "checkpoints trained for one cost weight");
      if (rc.w_quality != r0.w_quality || rc.w_cost != r0.w_cost || rc.w_latency != r0.w_latency)
        fail("--select-on: the candidates labelled '", label, "' were trained for different rewards: ",
             e.cks[idx[0]].path, " (w_quality ", r0.w_quality, ", w_cost ", r0.w_cost, ", w_latency ", r0.w_latency,
             ") and ", ck.path, " (w_quality ", rc.w_quality, ", w_cost ", rc.w_cost, ", w_latency ", rc.w_latency,
             "); give each cost weight its own label");
      const auto cfg = replay_env_config(ck, o.traces_path, sel);
      const auto world = ConductorWorld::build(cfg, e.traces);
      const auto split_table = ReplayTable::from_outcomes(*e.traces, world->outcomes, world->workers, sel);
      ConductorEnv env(cfg, world, o.num_envs);
      check_compatible(ck, env, o.traces_path);
      const auto results = replay_policy(*ck.policy, env, split_table, o.seed, /*greedy=*/true);
      double q = 0, c = 0, l = 0;
      for (const auto& r : results) {
        q += r.quality;
        c += r.cost_usd;
        l += r.latency_s;
      }
      const double n = static_cast<double>(std::max<std::size_t>(1, results.size()));
      q /= n, c /= n, l /= n;
      const double reward = rc.w_quality * q - rc.w_cost * c - rc.w_latency * l;
      cands.push_back({{"checkpoint", ck.checkpoint_dir}, {"reward", reward}, {"quality", q}, {"cost_usd", c},
                       {"latency_s", l}});
      if (reward > best_reward) {
        best_reward = reward;
        best = i;
      }
    }
    kept.push_back(e.cks[best]);
    table.push_back({{"label", label}, {"w_cost", r0.w_cost}, {"candidates", std::move(cands)},
                     {"chosen", e.cks[best].checkpoint_dir}});
  }
  e.cks = std::move(kept);
  e.labels = std::move(order);
  e.report["selection"] = {{"split", split_name(sel)}, {"queries", e.traces->split_indices(sel).size()},
                           {"groups", std::move(table)}};
}

// Stage "load": traces, checkpoints, the world and its tables, the reference workers, the scenario,
// the cost weight, and the report's header.
void load(Evaluation& e) {
  const EvalOptions& o = e.o;
  e.traces = std::make_shared<const TraceSet>(read_traces(o.traces_path));
  const auto& traces = e.traces;

  auto& cks = e.cks;
  for (const auto& p : o.checkpoints) {
    cks.push_back(load_conductor_checkpoint(p));
    check_workers_present(cks.back(), *traces, o.traces_path);
  }
  if (!o.cost_weights.empty()) {
    std::vector<std::string> fixed;
    for (const auto& ck : cks)
      if (!ck.env.reward.cost_conditioned()) fixed.push_back(ck.path);
    if (fixed.size() == cks.size())
      fail("--cost-weights: no checkpoint is cost-conditioned (", join(fixed), " trained for one cost weight)",
           "; --cost-weights evaluates policies trained with env.reward.w_cost_range at other cost weights. Leave it "
           "out, or train with --set 'env.reward.w_cost_range=[LO,HI]'");
    for (const auto& f : fixed)
      log_warn("--cost-weights: checkpoint ", f, " is not cost-conditioned (no env.reward.w_cost_range): it is "
               "evaluated at its own w_cost only");
  }
  select_candidates(e);
  // The world (features, predictors, outcome table) of the first checkpoint's configuration, or
  // of the default configuration when only baselines are evaluated.
  ConductorEnvConfig base;
  if (!cks.empty()) {
    base = replay_env_config(cks[0], o.traces_path, o.split);
  } else {
    base.traces_path = o.traces_path;
    base.split = o.split;
    base.sequential = true;
  }
  e.world = ConductorWorld::build(base, traces);
  const auto& world = e.world;
  e.test = ReplayTable::from_outcomes(*traces, world->outcomes, world->workers, o.split);
  ReplayTable& test = e.test;
  if (traces->split_indices(Split::kTrain).empty())
    fail(o.traces_path, ": the training split is empty: the baselines (cheapest, best single, router, cascade) "
         "are chosen and fitted on the training split");
  e.train = ReplayTable::from_outcomes(*traces, world->outcomes, world->workers, Split::kTrain);
  const ReplayTable& train = e.train;

  e.predictors = world_predictors(*world, base.predictors, o.traces_path);

  e.M = test.n_workers();
  Ref& ref = e.ref;
  ref.workers = test.workers;
  e.train_q = train.mean_quality();
  e.train_c = train.mean_cost();
  const auto& train_q = e.train_q;
  const auto& train_c = e.train_c;
  ref.strong = argmax(train_q);
  ref.weak = argmin(train_c);
  const auto test_q = test.mean_quality(), test_c = test.mean_cost();
  ref.q_strong = test_q[ref.strong];
  ref.q_weak = test_q[ref.weak];
  ref.c_strong = test_c[ref.strong];

  // The fault scenario on the baselines' table (the reference qualities above stay the
  // unfaulted ones, so PGR keeps its scale).
  e.scenario = parse_scenario(o.scenario);
  const Scenario& scenario = e.scenario;
  e.fault_worker = apply_scenario(scenario, test);

  double& cost_weight = e.cost_weight;
  cost_weight = o.cost_weight.value_or(-1.0);
  std::string cost_weight_source = "--cost-weight";
  if (!o.cost_weight) {
    if (!cks.empty()) {
      cost_weight = cks[0].env.reward.w_cost / std::max(1e-12, cks[0].env.reward.w_quality);
      cost_weight_source = "env.reward.w_cost / env.reward.w_quality of " + cks[0].path;
    } else {
      cost_weight = 0.0;
      cost_weight_source = "default (no checkpoint and no --cost-weight)";
    }
  }

  json& report = e.report;
  report["split"] = split_name(o.split);
  report["scenario"] = scenario.kind == Scenario::kNone ? std::string("none") : o.scenario;
  report["traces"] = o.traces_path;
  report["n_queries"] = test.n_queries();
  report["dropped_queries"] = test.dropped_queries;
  report["filled_latencies"] = test.filled_latencies;
  report["latency_note"] = test.filled_latencies > 0
                               ? "latencies not logged in the traces come from the fitted latency model's mean"
                               : "latencies replayed from the traces";
  report["workers"] = test.workers;
  report["best_single_worker"] = test.workers[ref.strong];
  report["cheapest_worker"] = test.workers[ref.weak];
  report["strong_worker"] = test.workers[ref.strong];
  report["weak_worker"] = test.workers[ref.weak];
  report["cost_weight"] = cost_weight;
  report["conductor_actions"] = o.greedy ? "greedy" : "sampled (seed " + std::to_string(o.seed) + ")";
  report["cost_weight_source"] = cost_weight_source;
}

// Stage "replay": every conductor checkpoint on the split (a frontier of their points).
void replay_conductors(Evaluation& e) {
  const EvalOptions& o = e.o;
  const auto& traces = e.traces;
  const auto& cks = e.cks;
  const auto& world = e.world;
  const auto& test = e.test;
  const auto& ref = e.ref;
  const auto& scenario = e.scenario;
  auto& policies = e.policies;
  auto& curves = e.curves;
  // Conductor checkpoints: each at its own cost weight and, when cost-conditioned, at every
  // --cost-weights value too (one frontier point each).
  for (std::size_t i = 0; i < cks.size(); ++i) {
    auto base_cfg = replay_env_config(cks[i], o.traces_path, o.split);
    add_scenario_fault(scenario, base_cfg);
    const auto w = i == 0 ? world : ConductorWorld::build(base_cfg, traces);
    if (w->workers != world->workers)
      fail("checkpoint ", cks[i].path, " uses workers [", join(w->worker_names), "], the first checkpoint [",
           join(world->worker_names), "]: a frontier compares conductors over the same workers");
    const RewardConfig& rc = base_cfg.reward;
    std::vector<double> weights{rc.w_cost};
    if (rc.cost_conditioned())
      for (double cw : o.cost_weights) {
        if (!(cw >= rc.w_cost_min && cw <= rc.w_cost_max))
          fail("--cost-weights: ", cw, " is outside the range [", rc.w_cost_min, ", ", rc.w_cost_max,
               "] checkpoint ", cks[i].path, " was trained on (env.reward.w_cost_range)");
        if (std::find(weights.begin(), weights.end(), cw) == weights.end()) weights.push_back(cw);
      }
    const std::string label = e.labels.empty() ? cks[i].path : e.labels[i];
    for (std::size_t j = 0; j < weights.size(); ++j) {
      auto cfg = base_cfg;
      cfg.reward.w_cost = weights[j];
      ConductorEnv env(cfg, w, o.num_envs);
      check_compatible(cks[i], env, o.traces_path);
      const auto results = e.keep("conductor", replay_policy(*cks[i].policy, env, test, o.seed, o.greedy));
      // A conditioned checkpoint's extra points are named by their weight.
      std::string point_label = label;
      if (j > 0) point_label = (e.labels.empty() && i == 0 ? "" : label + " ") + "w_cost=" + json(weights[j]).dump();
      const std::string name = i == 0 && j == 0 ? "conductor" : "conductor@" + point_label;
      if (policies.contains(name)) fail("two conductor points are both named '", name, "': give --label");
      const auto m = e.add(name, results);
      policies[name]["checkpoint"] = cks[i].checkpoint_dir;
      policies[name]["w_cost"] = weights[j];
      if (rc.cost_conditioned()) policies[name]["cost_conditioned"] = true;
      auto pt = curve_point("w_cost", weights[j], m, ref);
      pt["label"] = point_label;
      curves["conductor"].push_back(pt);
    }
  }

}

// Stage "baselines": single workers, cheapest, best single, oracle, random, the router (and the
// TF-IDF router when the features have a text head) and the cascade, with their sweeps.
void run_baselines(Evaluation& e) {
  const EvalOptions& o = e.o;
  const auto& traces = e.traces;
  const auto& world = e.world;
  const auto& test = e.test;
  const auto& train = e.train;
  const auto& predictors = e.predictors;
  const auto& M = e.M;
  const auto& ref = e.ref;
  const auto& train_q = e.train_q;
  const auto& train_c = e.train_c;
  const auto& scenario = e.scenario;
  const auto& fault_worker = e.fault_worker;
  const auto& cost_weight = e.cost_weight;
  auto& policies = e.policies;
  auto& curves = e.curves;
  // Baselines.
  e.add("best_single", e.keep("best_single", run_single(test, ref.strong)));
  e.add("cheapest", e.keep("cheapest", run_single(test, ref.weak)));
  e.add("oracle", e.keep("oracle", run_oracle(test)));
  e.add("random", e.keep("random", run_random(test, derive_seed(o.seed, 0x7a11d0))));
  for (std::size_t k = 0; k < M; ++k) {
    const auto m = e.add("single:" + test.workers[k], e.keep("single_workers", run_single(test, static_cast<int>(k))));
    auto pt = curve_point("worker", 0, m, ref);
    pt["worker"] = test.workers[k];  // the parameter of this family is the worker's name
    curves["single_workers"].push_back(pt);
  }
  const auto pred_train = predict(train, *traces, *predictors, world->features, world->feature_dim, world->workers);
  auto pred_test = predict(test, *traces, *predictors, world->features, world->feature_dim, world->workers);
  // What the router and cascade know of the scenario: an announced outage (the worker is left
  // out) and a new price (public); an unannounced outage and a slowdown they learn only by calling.
  if (fault_worker >= 0)
    for (std::size_t r = 0; r < test.n_queries(); ++r) {
      const std::size_t cell = test.at(r, static_cast<std::size_t>(fault_worker));
      if (scenario.kind == Scenario::kDownAnnounced) pred_test.quality[cell] = -1e9;
      if (scenario.kind == Scenario::kPrice) pred_test.cost_usd[cell] *= scenario.factor;
    }
  e.add("router", run_router(test, pred_test, cost_weight));
  policies["router"]["cost_weight"] = cost_weight;
  for (double w : router_cost_weights())
    curves["router"].push_back(curve_point("cost_weight", w, summarize(e.keep("router", run_router(test, pred_test, w)), M, ref.strong), ref));

  // The TF-IDF logistic router: the router's rule on the text head's own predictions, when the
  // features have a text head (features.text): what a plain text-classifier router achieves with
  // the same fitted model the conductor reads (test queries get the head fitted on all of train).
  if (const TextHead* head = world->featurizer.text_head()) {
    Predictions pt = pred_test;
    const std::size_t off = static_cast<std::size_t>(world->feature_dim - head->n_outputs());
    for (std::size_t r = 0; r < test.n_queries(); ++r) {
      const float* x = world->features.data() + test.query_index[r] * static_cast<std::size_t>(world->feature_dim);
      for (std::size_t k = 0; k < M; ++k)
        if (pt.quality[test.at(r, k)] > -1e8)  // keep an announced outage's exclusion
          pt.quality[test.at(r, k)] = x[off + static_cast<std::size_t>(world->workers[k])];
    }
    e.add("tfidf_router", run_router(test, pt, cost_weight));
    policies["tfidf_router"]["cost_weight"] = cost_weight;
    for (double w : router_cost_weights())
      curves["tfidf_router"].push_back(
          curve_point("cost_weight", w, summarize(e.keep("tfidf_router", run_router(test, pt, w)), M, ref.strong), ref));
  }

  auto chain = pareto_chain(train_q, train_c);
  if (scenario.kind == Scenario::kDownAnnounced && chain.size() > 1)
    chain.erase(std::remove(chain.begin(), chain.end(), fault_worker), chain.end());
  const Cascade cascade = Cascade::fit(train, pred_train, chain);
  const double best_t = cascade.best_threshold(train, pred_train, cost_weight);
  e.add("cascade", cascade.run(test, pred_test, best_t));
  policies["cascade"]["threshold"] = best_t;
  std::vector<std::string> chain_names;
  for (int m : chain) chain_names.push_back(test.workers[m]);
  policies["cascade"]["chain"] = chain_names;
  for (double t : cascade_thresholds())
    curves["cascade"].push_back(curve_point("threshold", t, summarize(e.keep("cascade", cascade.run(test, pred_test, t)), M, ref.strong), ref));
}

// Stage "frontiers": AIQ over a common cost range, cost saved at the best single worker's quality,
// APGR / CPT where the family has a PGR curve, and each family's hull.
Frontiers frontiers(Evaluation& e) {
  const auto& ref = e.ref;
  const auto& policies = e.policies;
  const auto& curves = e.curves;
  e.report["policies"] = policies;
  e.report["curves"] = curves;

  // Frontier metrics per family: AIQ over a common cost range [0, most expensive point].
  Frontiers fr;
  auto& cq = fr.cq;
  std::map<std::string, std::vector<CurvePoint>> pg;
  for (auto it = curves.begin(); it != curves.end(); ++it)
    for (const auto& p : *it) {
      cq[it.key()].push_back(point_of(p));
      if (!p["pgr"].is_null()) pg[it.key()].push_back({p["strong_call_fraction"].get<double>(), p["pgr"].get<double>()});
    }
  for (const char* name : {"best_single", "cheapest", "oracle", "random"}) {
    const auto& p = policies[name];
    cq[name].push_back(CurvePoint{p["cost_usd"].get<double>(), p["quality"].get<double>()});
  }
  double& c_max = fr.c_max;
  for (const auto& [name, pts] : cq)
    for (const auto& p : pts) c_max = std::max(c_max, p.x);
  json& frontier = fr.frontier;
  auto& observed_aiq = fr.observed_aiq;
  for (const auto& [name, pts] : cq) {
    json f;
    f["points"] = pts.size();
    observed_aiq[name] = c_max > 0 ? aiq(pts, 0.0, c_max) : kNaN;
    f["aiq"] = num(observed_aiq[name]);
    f["cost_saved_at_best_single_quality"] = num(cost_saved_at_quality(pts, ref.q_strong, ref.c_strong));
    if (pg.count(name) && name != "single_workers") {
      f["apgr"] = num(apgr(pg[name]));
      f["cpt50"] = num(cpt(pg[name], 0.5));
      f["cpt80"] = num(cpt(pg[name], 0.8));
    }
    json hull = json::array();
    for (const auto& h : nondecreasing_convex_hull(pts)) hull.push_back({h.x, h.y});
    f["hull"] = hull;
    frontier[name] = f;
  }
  return fr;
}

// Stage "intervals": the paired bootstrap over queries.
void intervals(Evaluation& e, Frontiers& fr) {
  const EvalOptions& o = e.o;
  const auto& outcomes = e.outcomes;
  // Paired bootstrap over queries: an interval for every family's AIQ and, when conductors were
  // evaluated, for the conductor's AIQ minus each other family's.
  if (o.aiq_bootstrap > 0) {
    const uint64_t seed = derive_seed(o.seed, 0xa1b005);
    const auto boot = bootstrap_aiq(outcomes, o.aiq_bootstrap, seed);
    auto interval = [](const std::vector<double>& v) {
      return json::array({num(percentile(v, 2.5)), num(percentile(v, 97.5))});
    };
    const auto cond = boot.find("conductor");
    for (const auto& [name, values] : boot) {
      json& f = fr.frontier[name];
      f["aiq_ci95"] = interval(values);
      if (cond == boot.end() || name == "conductor") continue;
      std::vector<double> diff(values.size());
      std::size_t not_above = 0;
      for (std::size_t b = 0; b < values.size(); ++b) {
        diff[b] = cond->second[b] - values[b];
        not_above += diff[b] <= 0 ? 1 : 0;
      }
      json d;
      d["observed"] = num(fr.observed_aiq["conductor"] - fr.observed_aiq[name]);
      d["ci95"] = interval(diff);
      d["share_of_resamples_not_above"] = static_cast<double>(not_above) / static_cast<double>(diff.size());
      f["conductor_aiq_minus_this"] = d;
    }
    e.report["aiq_bootstrap"] = {{"resamples", o.aiq_bootstrap}, {"seed", seed}, {"confidence", 0.95},
                               {"method", "paired percentile bootstrap over queries"}};
  }
}

// Stage "report": the frontier section, coverage warnings and the per-query outcomes.
void finish_report(Evaluation& e, const Frontiers& fr) {
  const auto& traces = e.traces;
  const auto& test = e.test;
  const auto& policies = e.policies;
  const auto& outcomes = e.outcomes;
  json& report = e.report;
  report["frontier"] = fr.frontier;
  report["aiq_cost_range_usd"] = {0.0, fr.c_max};
  // A conductor frontier that stops short of either end of the cost range loses AIQ that the
  // routers' sweeps keep (measured: experiments/routerbench/README.md, "The held-out stand-in on test").
  json warnings = json::array();
  if (fr.cq.count("conductor")) {
    for (const auto& w : frontier_coverage_warnings(fr.cq.at("conductor"), point_of(policies["best_single"]),
                                                    point_of(policies["cheapest"]))) {
      warnings.push_back("conductor " + w);
      log_warn(warnings.back().get<std::string>());
    }
  }
  report["warnings"] = warnings;
  // Per-query outcomes of every frontier point (write_report puts them in outcomes.json): what
  // `conductor eval-pool` needs to pool the bootstrap over the evaluations of several seeds.
  {
    json ids = json::array();
    for (std::size_t r = 0; r < test.n_queries(); ++r) ids.push_back(traces->query_id[test.query_index[r]]);
    json fams = json::object();
    for (const auto& [name, pts] : outcomes) {
      json arr = json::array();
      for (const auto& p : pts) arr.push_back({{"cost_usd", p.cost}, {"quality", p.quality}});
      fams[name] = arr;
    }
    report["per_query"] = {{"query_ids", ids}, {"families", fams}};
  }
}

}  // namespace

json run_evaluation(const EvalOptions& o) {
  check_options(o);
  Evaluation e(o);
  load(e);
  replay_conductors(e);
  run_baselines(e);
  Frontiers fr = frontiers(e);
  intervals(e, fr);
  finish_report(e, fr);
  return e.report;
}

}  // namespace conductor::eval
