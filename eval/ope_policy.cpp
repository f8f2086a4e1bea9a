#include "eval/ope_policy.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "envs/env_hooks.h"
#include "eval/evaluate.h"
#include "eval/simulate_logs.h"
#include "world/predictors.h"
#include "traces/store.h"

namespace conductor::eval {

namespace {

json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// First-step action probabilities over the env workers for every query of the env's split.
std::map<std::size_t, std::vector<double>> first_call_probs(const Policy& policy, ConductorEnv& env, bool stochastic,
                                                            uint64_t seed) {
  const int n = env.num_envs(), A = env.spec().n_actions, M = env.n_workers();
  std::map<std::size_t, std::vector<double>> out;
  std::vector<float> probs(static_cast<std::size_t>(n) * A);
  env.logged_replay()->replay_first_steps(
      seed, [&](const ObsBatch& obs, int32_t* actions) { policy.act(obs, ActOptions{true, seed}, actions, probs.data()); },
      [&](const ObsBatch&, int i, std::size_t q, const int32_t* actions) {
        std::vector<double> p(M, 0.0);
        if (stochastic) {
          double s = 0;
          for (int k = 0; k < M; ++k) s += (p[k] = probs[static_cast<std::size_t>(i) * A + k]);
          if (!(s > 0)) fail("ope: the policy gives no probability to any CALL action at the first step of query ", q);
          for (auto& v : p) v /= s;
        } else {
          if (actions[i] >= M) fail("ope: the policy's first action on query ", q, " is not a CALL");
          p[actions[i]] = 1.0;
        }
        out[q] = std::move(p);
      },
      "ope: the pass over the split");
  return out;
}

struct Estimates {
  OpeResult result;
  double truth = std::nan("");
};

json result_json(const OpeResult& r, double truth) {
  json j;
  j["n"] = r.n;
  j["effective_sample_size"] = r.effective_sample_size;
  j["max_weight"] = r.max_weight;
  j["mean_weight"] = r.mean_weight;
  j["true_value"] = num(truth);
  json e = json::object();
  for (const auto& x : r.estimates) {
    json v = {{"value", x.value}, {"ci_low", x.ci_low}, {"ci_high", x.ci_high}};
    if (std::isfinite(truth)) v["covers_true_value"] = x.ci_low <= truth && truth <= x.ci_high;
    e[x.estimator] = v;
  }
  j["estimates"] = e;
  return j;
}


// ---- Stages of `conductor ope`: load and join, reward model, estimates, report ----

// The logs joined to the target policy: logged queries -> trace queries (by id), logged models ->
// policy workers (by name), and the policy's first-call probabilities on every logged query.
struct JoinedLogs {
  TraceSet logs;
  ConductorCheckpoint ck;
  std::shared_ptr<const TraceSet> traces;
  std::vector<std::size_t> tq;                    // decision -> trace query
  std::set<uint8_t> splits;                       // the splits holding the logged queries
  std::map<std::size_t, std::vector<double>> pi;  // trace query -> [M] first-call probabilities
  std::vector<std::string> workers;
  std::shared_ptr<const ConductorWorld> world;    // of the first split (features)
  BanditData base;                                // actions, propensities, target probabilities
};

JoinedLogs load_and_join(const OpePolicyOptions& o) {
  JoinedLogs j;
  j.logs = read_traces(o.logs_path);
  const TraceSet& logs = j.logs;
  if (!logs.has_decisions()) fail(o.logs_path, ": no /decisions: `conductor ope` evaluates bandit logs (write them with `conductor traces simulate-logs` or import production logs)");
  const Decisions& d = logs.decisions;
  if (d.propensity.size() != d.size())
    fail(o.logs_path, ": /decisions/propensity has ", d.propensity.size(), " values for ", d.size(), " decisions");
  j.ck = load_conductor_checkpoint(o.checkpoint);
  j.traces = std::make_shared<const TraceSet>(read_traces(o.traces_path));
  check_workers_present(j.ck, *j.traces, o.traces_path);

  j.tq = match_logged_queries(logs, o.logs_path, *j.traces, o.traces_path,
                              "--traces must hold the logged queries (the policy's observation is built from them)");
  for (std::size_t q : j.tq) j.splits.insert(j.traces->split[q]);
  for (uint8_t s : j.splits) {
    auto cfg = replay_env_config(j.ck, o.traces_path, static_cast<Split>(s));
    auto w = ConductorWorld::build(cfg, j.traces);
    ConductorEnv env(cfg, w, o.num_envs);
    check_compatible(j.ck, env, o.traces_path);
    auto p = first_call_probs(*j.ck.policy, env, o.stochastic, o.ope.seed);
    j.pi.insert(p.begin(), p.end());
    j.workers = w->worker_names;
    if (!j.world) j.world = w;
  }
  const int M = static_cast<int>(j.workers.size());
  const std::vector<int> env_worker_of_model = workers_of_logged_models(logs, j.workers);

  const std::size_t n = d.size();
  BanditData& base = j.base;
  base.n_actions = M;
  base.propensity = d.propensity;
  base.action.resize(n);
  base.target_prob.resize(n * M);
  for (std::size_t i = 0; i < n; ++i) {
    const int a = env_worker_of_model[d.action[i]];
    if (a < 0) {
      std::string known;
      for (const auto& w : j.workers) known += (known.empty() ? "" : ", ") + w;
      fail(o.logs_path, ": /decisions/action[", i, "] is model '", logs.model_name[d.action[i]],
           "', outside the policy's action space (its workers: ", known, ")");
    }
    base.action[i] = a;
    const auto it = j.pi.find(j.tq[i]);
    CONDUCTOR_CHECK(it != j.pi.end(), "no first-step probabilities for query ", j.tq[i]);
    std::copy(it->second.begin(), it->second.end(), base.target_prob.begin() + i * M);
  }
  return j;
}

// Stage "reward model": from the logs, cross-fitted over two folds (even / odd decisions): the model
// that scores decision i never saw it, so the DR correction is not cancelled by an in-sample fit.
// Per worker: logistic regression of quality on the query features, mean cost and latency.
constexpr int kFolds = 2;
struct FoldModel {
  std::vector<LogisticRegression> q;
  std::vector<uint8_t> has_q;
  std::vector<double> mean_c, mean_l;
  double all_q = 0, all_c = 0;
};

std::vector<FoldModel> fit_reward_models(const JoinedLogs& in) {
  const Decisions& d = in.logs.decisions;
  const BanditData& base = in.base;
  const std::size_t n = d.size();
  const int M = base.n_actions;
  const auto& world = in.world;
  const auto& tq = in.tq;
  const int dim = world->feature_dim;
  std::vector<FoldModel> folds(kFolds);
  for (int f = 0; f < kFolds; ++f) {
    FoldModel& fm = folds[f];
    fm.q.resize(M);
    fm.has_q.assign(M, 0);
    fm.mean_c.assign(M, 0);
    fm.mean_l.assign(M, 0);
    double cnt_all = 0;
    for (std::size_t i = f; i < n; i += kFolds) {
      fm.all_q += d.quality[i];
      fm.all_c += d.cost_usd[i];
      cnt_all += 1;
    }
    fm.all_q /= std::max(1.0, cnt_all);
    fm.all_c /= std::max(1.0, cnt_all);
    for (int k = 0; k < M; ++k) {
      std::vector<std::size_t> rows;
      for (std::size_t i = f; i < n; i += kFolds)
        if (base.action[i] == k && std::isfinite(d.quality[i])) rows.push_back(i);
      double cnt_l = 0;
      for (std::size_t i : rows) {
        fm.mean_c[k] += d.cost_usd[i];
        if (std::isfinite(d.latency_s[i])) {
          fm.mean_l[k] += d.latency_s[i];
          cnt_l += 1;
        }
      }
      fm.mean_c[k] = rows.empty() ? fm.all_c : fm.mean_c[k] / rows.size();
      fm.mean_l[k] = cnt_l > 0 ? fm.mean_l[k] / cnt_l : std::nan("");
      if (rows.size() >= 10) {
        Eigen::MatrixXd X(rows.size(), dim);
        Eigen::VectorXd y(rows.size());
        for (std::size_t j = 0; j < rows.size(); ++j) {
          const float* x = world->features.data() + tq[rows[j]] * dim;
          for (int c = 0; c < dim; ++c) X(j, c) = x[c];
          y(j) = d.quality[rows[j]];
        }
        fm.q[k].fit(X, y, 1.0);
        fm.has_q[k] = 1;
      }
    }
  }
  return folds;
}

// Stages "estimates" and "report": every estimator of the quality, cost and reward of the target
// policy, with the true value where the traces have full information.
json estimate_and_report(const JoinedLogs& in, const std::vector<FoldModel>& folds, const OpePolicyOptions& o) {
  const Decisions& d = in.logs.decisions;
  const BanditData& base = in.base;
  const std::size_t n = d.size();
  const int M = base.n_actions;
  const auto& world = in.world;
  const auto& traces = in.traces;
  const auto& tq = in.tq;
  const auto& pi = in.pi;
  const auto& splits = in.splits;
  const auto& workers = in.workers;
  const auto& ck = in.ck;
  const int dim = world->feature_dim;
  const auto& rw = ck.env.reward;
  struct Metric {
    std::string name;
    std::function<double(std::size_t i)> logged;           // reward of decision i
    std::function<double(const FoldModel& fm, std::size_t q, int k)> modelled;  // reward model
    std::function<double(std::size_t q, int k)> actual;    // full-information outcome (NaN if unknown)
  };
  auto qhat = [&](const FoldModel& fm, std::size_t q, int k) {
    return fm.has_q[k] ? fm.q[k].predict(world->features.data() + q * dim) : fm.all_q;
  };
  const bool full = traces->has_outcomes();
  auto tq_val = [&](std::size_t q, int k) {
    const int m = world->workers[k];
    if (!full) return std::nan("");
    const auto cell = traces->at(q, m);
    const bool failed = !traces->error.empty() && traces->error[cell] != kOk && traces->error[cell] != kErrorMissing;
    return failed ? 0.0 : static_cast<double>(traces->quality[cell]);
  };
  auto tc_val = [&](std::size_t q, int k) { return full ? traces->cost_usd[traces->at(q, world->workers[k])] : std::nan(""); };
  auto tl_val = [&](std::size_t q, int k) {
    return full ? static_cast<double>(world->outcomes.latency_s[world->outcomes.at(q, world->workers[k])]) : std::nan("");
  };
  const bool use_latency = rw.w_latency != 0.0;
  std::vector<Metric> metrics = {
      {"quality", [&](std::size_t i) { return static_cast<double>(d.quality[i]); }, qhat, tq_val},
      {"cost_usd", [&](std::size_t i) { return d.cost_usd[i]; }, [&](const FoldModel& fm, std::size_t, int k) { return fm.mean_c[k]; }, tc_val},
      {"reward",
       [&](std::size_t i) {
         return rw.w_quality * d.quality[i] - rw.w_cost * d.cost_usd[i] - (use_latency ? rw.w_latency * d.latency_s[i] : 0.0);
       },
       [&](const FoldModel& fm, std::size_t q, int k) {
         return rw.w_quality * qhat(fm, q, k) - rw.w_cost * fm.mean_c[k] - (use_latency ? rw.w_latency * fm.mean_l[k] : 0.0);
       },
       [&](std::size_t q, int k) {
         return rw.w_quality * tq_val(q, k) - rw.w_cost * tc_val(q, k) - (use_latency ? rw.w_latency * tl_val(q, k) : 0.0);
       }}};

  json report;
  report["checkpoint"] = ck.checkpoint_dir;
  report["logs"] = o.logs_path;
  report["traces"] = o.traces_path;
  report["n_decisions"] = n;
  report["logging_policies"] = std::set<std::string>(d.policy.begin(), d.policy.end());
  report["target"] = o.stochastic ? "first call, policy probabilities" : "first call, greedy";
  report["workers"] = workers;
  report["reward_weights"] = {{"w_quality", rw.w_quality}, {"w_cost", rw.w_cost}, {"w_latency", rw.w_latency}};
  report["ci"] = o.ope.ci == CiMethod::kBootstrap
                     ? "bootstrap percentile, " + std::to_string(o.ope.bootstrap_samples) + " samples, seed " + std::to_string(o.ope.seed)
                     : std::string("normal (influence function)");
  report["confidence"] = o.ope.confidence;
  report["ips_clip"] = o.ope.ips_clip;
  report["switch_tau"] = o.ope.switch_tau;
  report["reward_model"] = "fitted on the logs, 2-fold cross-fitted: per worker logistic quality on query features, mean cost and latency";
  report["true_value_population"] =
      "mean over the queries of the logged split(s) with every outcome logged, of sum_a pi(a|x) outcome(x, a)";
  // Population for the true value: the complete rows of the logged splits (the simulator's draw).
  std::vector<std::size_t> population;
  if (full)
    for (uint8_t s : splits)
      for (std::size_t q : complete_queries(*traces, static_cast<Split>(s))) population.push_back(q);

  json per_metric = json::object();
  for (const auto& mtr : metrics) {
    BanditData b = base;
    b.reward.resize(n);
    b.reward_hat.resize(n * M);
    for (std::size_t i = 0; i < n; ++i) {
      b.reward[i] = mtr.logged(i);
      if (!std::isfinite(b.reward[i]))
        fail(o.logs_path, ": decision ", i, " has no logged ", mtr.name == "reward" ? "quality, cost or latency" : mtr.name,
             " (the reward of a logged decision must be known)");
      const FoldModel& other = folds[(i + 1) % kFolds];  // the fold that did not see decision i
      for (int k = 0; k < M; ++k) b.reward_hat[i * M + k] = mtr.modelled(other, tq[i], k);
    }
    double truth = std::nan("");
    if (!population.empty()) {
      double s = 0;
      for (std::size_t q : population) {
        const auto& p = pi.at(q);
        for (int k = 0; k < M; ++k) s += p[k] * mtr.actual(q, k);
      }
      truth = s / population.size();
    }
    per_metric[mtr.name] = result_json(estimate_policy_value(b, o.ope, o.logs_path), truth);
  }
  report["metrics"] = per_metric;
  return report;
}

}  // namespace

json run_ope(const OpePolicyOptions& o) {
  const JoinedLogs joined = load_and_join(o);
  const std::vector<FoldModel> folds = fit_reward_models(joined);
  return estimate_and_report(joined, folds, o);
}

std::string ope_markdown(const json& r) {
  std::ostringstream os;
  char buf[256];
  os << "## Off-policy evaluation\n\nCheckpoint `" << r["checkpoint"].get<std::string>() << "` on `"
     << r["logs"].get<std::string>() << "` (" << r["n_decisions"].get<std::size_t>() << " decisions; target: "
     << r["target"].get<std::string>() << "; intervals: " << r["ci"].get<std::string>() << ", "
     << r["confidence"].get<double>() * 100 << "%).\n\n";
  for (auto it = r["metrics"].begin(); it != r["metrics"].end(); ++it) {
    const json& m = *it;
    std::snprintf(buf, sizeof(buf), "### %s\n\nEffective sample size %.1f of %zu (max weight %.3g, mean weight %.4f).",
                  it.key().c_str(), m["effective_sample_size"].get<double>(), m["n"].get<std::size_t>(),
                  m["max_weight"].get<double>(), m["mean_weight"].get<double>());
    os << buf;
    if (!m["true_value"].is_null()) {
      std::snprintf(buf, sizeof(buf), " True value (full information): %.6g.", m["true_value"].get<double>());
      os << buf;
    }
    os << "\n\n| estimator | value | CI low | CI high |" << (m["true_value"].is_null() ? "" : " covers truth |") << "\n";
    os << "|---|---:|---:|---:|" << (m["true_value"].is_null() ? "" : "---|") << "\n";
    for (const auto& name : ope_estimator_names()) {
      const json& e = m["estimates"][name];
      std::snprintf(buf, sizeof(buf), "| %s | %.6g | %.6g | %.6g |", name.c_str(), e["value"].get<double>(),
                    e["ci_low"].get<double>(), e["ci_high"].get<double>());
      os << buf;
      if (!m["true_value"].is_null()) os << " " << (e["covers_true_value"].get<bool>() ? "yes" : "no") << " |";
      os << "\n";
    }
    os << "\n";
  }
  return os.str();
}

std::string write_ope_report(const json& report, const std::string& dir) {
  make_dirs(dir);
  const std::string md = ope_markdown(report);
  write_file_atomic(dir + "/report.json", report.dump(2) + "\n");
  write_file_atomic(dir + "/report.md", md);
  return md;
}

}  // namespace conductor::eval
