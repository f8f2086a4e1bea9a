// Warm start from logged decisions (bc_warmstart.logs): behaviour cloning of what a served policy
// did, weighted by how it turned out. docs/training.md, docs/production.md.
//
// The logs are bandit logs (/decisions of a trace file: `conductor traces import --format jsonl`
// of `serve --log-dir` output, or `conductor traces simulate-logs`): one logged first call per
// request, with its propensity and its outcome (quality from feedback, cost, latency). For each
// decision the policy's observation at the first step is rebuilt by this run's environment over
// env.traces, which must hold the logged queries (matched by query id, on whichever split holds
// them), exactly as `conductor ope --traces` does. The loss is the weighted masked cross-entropy of
// the logged actions:
//
//   loss = - sum_i w_i log pi(a_i | x_i) / sum_i w_i       (per minibatch)
//
// weighting: advantage (default), advantage-weighted regression (Peng et al. 2019) with an
//   importance correction for the logging policy:
//     A_i = (r_i - rbar) / std(r),  rbar = the self-normalized (SNIPS) mean of the logged reward,
//     w_i = min( (1/p_i) / mean(1/p) * exp(A_i / beta), max_weight )
//   r_i is this run's reward of the logged call (env.reward: w_quality * quality - w_cost * cost
//   - w_latency * latency). With importance: false the 1/p_i factor is left out (the fit then
//   leans towards what the logging policy chose often).
// weighting: uniform, w_i = 1: plain imitation of the logging policy.
//
// Decisions without a quality label (no feedback) are left out and counted; so are decisions whose
// logged worker the environment masks at the first step (for example an env with randomized pools).
// Every rank of a data-parallel run fits the same rows in the same order (the warm start is cheap
// next to RL), so the weights stay equal.
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>

#include "core/error.h"
#include "core/log.h"
#include "envs/env_hooks.h"
#include "trainer/algorithm.h"
#include "traces/store.h"

namespace conductor {

namespace {

struct LoggedRows {
  RolloutBuffer buf;           // observations, masks, logged actions; advantages = weights
  int64_t decisions = 0, unlabelled = 0, masked = 0;
  double mean_reward = 0.0;    // self-normalized mean of the logged reward over the kept rows
};

// Decision i's logged worker is one of this run's and its propensity is in (0, 1].
void check_decision(const TraceSet& logs, std::size_t i, const std::vector<int>& worker_of_model,
                    const std::vector<std::string>& workers, const std::string& path) {
  const Decisions& d = logs.decisions;
  const int k = worker_of_model[static_cast<std::size_t>(d.action[i])];
  if (k < 0) {
    std::string known;
    for (const auto& w : workers) known += (known.empty() ? "" : ", ") + w;
    fail("bc_warmstart.logs: ", path, ": /decisions/action[", i, "] is model '",
         logs.model_name[static_cast<std::size_t>(d.action[i])], "', not one of this run's workers (", known, ")");
  }
  const double p = d.propensity[i];
  if (!(p > 0.0 && p <= 1.0))
    fail("bc_warmstart.logs: ", path, ": /decisions/propensity[", i, "] is ", p, "; expected a value in (0, 1]");
}

// The rows' weights (buf.advantages) from their inverse propensities and logged rewards; returns the
// self-normalized mean reward.
double set_weights(const BcConfig& bc, const std::vector<double>& inv_p, const std::vector<double>& r_kept,
                   std::vector<float>& weights) {
  const std::size_t n = r_kept.size();
  double sw = 0, swr = 0;
  for (std::size_t j = 0; j < n; ++j) {
    sw += inv_p[j];
    swr += inv_p[j] * r_kept[j];
  }
  const double mean_inv = sw / static_cast<double>(n);
  const double mean_reward = swr / sw;
  double var = 0;
  for (std::size_t j = 0; j < n; ++j) var += (r_kept[j] - mean_reward) * (r_kept[j] - mean_reward);
  const double sd = std::sqrt(var / static_cast<double>(n));
  weights.resize(n);
  for (std::size_t j = 0; j < n; ++j) {
    double w = 1.0;
    if (bc.weighting == "advantage") {
      const double a = sd > 0 ? (r_kept[j] - mean_reward) / sd : 0.0;
      w = std::exp(std::min(a / bc.beta, 50.0)) * (bc.importance ? inv_p[j] / mean_inv : 1.0);
      w = std::min(w, bc.max_weight);
    }
    weights[j] = static_cast<float>(w);
  }
  return mean_reward;
}

LoggedRows build_rows(TrainerState& s, const std::string& resolved_yaml) {
  const BcConfig& bc = s.cfg.bc;
  const std::string& path = bc.logs;
  const TraceSet logs = read_traces(path);
  if (!logs.has_decisions())
    fail("bc_warmstart.logs: ", path, " has no /decisions (import serve logs with `conductor traces import --format "
         "jsonl`, or simulate them with `conductor traces simulate-logs`)");
  const Decisions& d = logs.decisions;
  if (d.propensity.size() != d.size())
    fail("bc_warmstart.logs: ", path, ": /decisions/propensity has ", d.propensity.size(), " values for ", d.size(),
         " decisions");

  // Which logged decisions are usable, and the splits of env.traces that hold their queries.
  LoggedRows out;
  out.decisions = static_cast<int64_t>(d.size());
  out.buf.n_actions = s.env_spec.n_actions;
  std::map<Split, std::unique_ptr<VectorEnv>> envs;
  auto env_for = [&](Split split) -> LoggedDecisionReplay& {
    auto& e = envs[split];
    if (!e) {
      ConfigDoc doc = ConfigDoc::load_string(resolved_yaml, s.run_dir + "/config.yaml (bc_warmstart.logs)");
      doc.apply_override(std::string("env.split=") + split_name(split));
      doc.apply_override("env.mode=sequential");
      doc.apply_override("env.num_envs=16");
      e = RunConfig::parse(doc.root()).make_env_instance(16);
      const EnvSpec& sp = e->spec();
      if (sp.obs_dim != s.env_spec.obs_dim || sp.n_actions != s.env_spec.n_actions)
        throw InternalError("bc_warmstart.logs: the replay environment's shape differs from the training one");
    }
    LoggedDecisionReplay* replay = e->logged_replay();
    if (!replay) throw InternalError("bc_warmstart.logs: env " + e->spec().id + " does not replay logged decisions");
    return *replay;
  };
  LoggedDecisionReplay& train_env = env_for(Split::kTrain);
  const TraceSet& traces = train_env.replay_traces();
  const std::vector<std::string>& workers = train_env.replay_workers();
  const std::vector<std::size_t> logged_query = match_logged_queries(
      logs, "bc_warmstart.logs: " + path, traces, "env.traces (" + traces.source + ")",
      "the observation of a logged decision is rebuilt from env.traces, so it must hold the logged queries");
  const std::vector<int> worker_of_model = workers_of_logged_models(logs, workers);

  const RewardConfig& rw = train_env.replay_reward();
  std::vector<std::size_t> kept, trace_query;
  std::vector<double> reward;
  std::map<Split, std::set<std::size_t>> wanted;
  for (std::size_t i = 0; i < d.size(); ++i) {
    check_decision(logs, i, worker_of_model, workers, path);
    const bool needs_latency = rw.w_latency != 0.0;
    if (!std::isfinite(d.quality[i]) || !std::isfinite(d.cost_usd[i]) ||
        (needs_latency && !std::isfinite(d.latency_s[i]))) {
      ++out.unlabelled;
      continue;
    }
    kept.push_back(i);
    trace_query.push_back(logged_query[i]);
    reward.push_back(rw.w_quality * d.quality[i] - rw.w_cost * d.cost_usd[i] -
                     (needs_latency ? rw.w_latency * d.latency_s[i] : 0.0));
    wanted[static_cast<Split>(traces.split[logged_query[i]])].insert(logged_query[i]);
  }
  if (kept.empty())
    fail("bc_warmstart.logs: ", path, ": none of its ", d.size(),
         " decisions has a quality label (post feedback to /v1/feedback, or log with outcomes)");

  // First-step observations of the wanted queries: one sequential pass over each split.
  EncodedObs captured;
  std::vector<uint8_t> captured_mask;
  std::unordered_map<std::size_t, int64_t> row_of;
  for (auto& [split, queries] : wanted) {
    const int A = s.env_spec.n_actions;
    EncodedObs row;
    env_for(split).replay_first_steps(
        derive_seed(s.cfg.seed, 0x10BC),
        [&](const ObsBatch& obs, int32_t* actions) {  // any allowed action: only first steps are read
          for (int i = 0; i < obs.n; ++i) {
            const uint8_t* mask = obs.mask + static_cast<int64_t>(i) * A;
            for (actions[i] = 0; actions[i] + 1 < A && !mask[actions[i]];) ++actions[i];
          }
        },
        [&](const ObsBatch& obs, int i, std::size_t q, const int32_t*) {
          if (!queries.count(q)) return;
          s.model->encode(obs.row(i), row);
          row_of[q] = captured.rows;
          captured.append_row(row, 0);
          const uint8_t* mask = obs.mask + static_cast<int64_t>(i) * A;
          captured_mask.insert(captured_mask.end(), mask, mask + A);
        },
        "bc_warmstart.logs: the pass over the logged queries");
  }

  // Rows and weights.
  const int A = s.env_spec.n_actions;
  std::vector<double> inv_p, r_kept;
  for (std::size_t j = 0; j < kept.size(); ++j) {
    const std::size_t i = kept[j];
    const auto it = row_of.find(trace_query[j]);
    CONDUCTOR_CHECK(it != row_of.end(), "no first-step observation for trace query ", trace_query[j]);
    const int k = worker_of_model[static_cast<std::size_t>(d.action[i])];
    const uint8_t* mask = captured_mask.data() + it->second * A;
    if (!mask[k]) {
      ++out.masked;
      continue;
    }
    out.buf.obs.append_row(captured, it->second);
    out.buf.masks.insert(out.buf.masks.end(), mask, mask + A);
    out.buf.actions.push_back(k);
    out.buf.log_probs.push_back(static_cast<float>(std::log(d.propensity[i])));
    inv_p.push_back(1.0 / d.propensity[i]);
    r_kept.push_back(reward[j]);
  }
  const std::size_t n = r_kept.size();
  if (n == 0)
    fail("bc_warmstart.logs: ", path, ": every labelled decision's worker is masked at the first step by this run's "
         "environment (", out.masked, " decisions)");
  out.mean_reward = set_weights(bc, inv_p, r_kept, out.buf.advantages);
  return out;
}

}  // namespace

Metrics logged_warm_start(TrainerState& s, const std::string& resolved_yaml) {
  const BcConfig& bc = s.cfg.bc;
  LoggedRows rows = build_rows(s, resolved_yaml);
  RolloutBuffer& buf = rows.buf;
  const auto params = s.model->policy_parameters();
  torch::optim::Adam opt(params, torch::optim::AdamOptions(bc.learning_rate));
  Rng rng(derive_seed(s.cfg.seed, 0x10BC, 1));  // the same on every rank: every rank fits the same rows
  Metrics m;
  m.update = 0;
  m.global_step = 0;
  imitate(s, bc, buf, opt, params, rng, /*weighted=*/true, m);
  double sw = 0, sw2 = 0;
  for (float w : buf.advantages) {
    sw += w;
    sw2 += double(w) * w;
  }
  m.set("bc/logged_decisions", static_cast<double>(rows.decisions));
  m.set("bc/unlabelled_decisions", static_cast<double>(rows.unlabelled));
  m.set("bc/masked_decisions", static_cast<double>(rows.masked));
  m.set("bc/logged_reward_snips", rows.mean_reward);
  m.set("bc/weight_effective_sample_size", sw2 > 0 ? sw * sw / sw2 : 0.0);
  return m;
}

}  // namespace conductor
