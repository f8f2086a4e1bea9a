#include "envs/conductor_env.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "core/error.h"
#include "envs/conductor_live.h"
#include "envs/episode_loop.h"
#include "envs/registry.h"
#include "world/baseline_rules.h"
#include "world/state_blob.h"
#include "traces/catalog.h"
#include "traces/store.h"

namespace conductor {

namespace {
// Uniform integer in [0, n) by Lemire's multiply-shift with rejection (exact, and without the two
// 64-bit divisions of Rng::below on the hot path of every reset).
inline uint64_t index_below(Rng& rng, uint64_t n) {
  unsigned __int128 m = static_cast<unsigned __int128>(rng.next_u64()) * n;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < n) {
    const uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      m = static_cast<unsigned __int128>(rng.next_u64()) * n;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}
std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}
}  // namespace

// ---------------------------------------------------------------------------------------------
// Config

ConductorEnvConfig ConductorEnvConfig::parse(ConfigReader& r) {
  ConductorEnvConfig c;
  if (r.has("traces") && r.has("synthetic"))
    r.fail_at("synthetic", "give either 'traces: PATH' or 'synthetic: {...}', not both");
  if (r.has("traces")) {
    c.traces_path = r.required<std::string>("traces");
    if (c.traces_path.empty()) r.fail_at("traces", "expected a trace file path");
  } else {
    // No trace file: the embedded synthetic world (defaults unless `synthetic` overrides them).
    c.synthetic = true;
    c.synth = SynthConfig::parse(r.child("synthetic"));
  }
  {
    const std::string s = r.get<std::string>("split", "train");
    try {
      c.split = parse_split(s);
    } catch (const Error&) {
      r.fail_at("split", "expected train, validation or test, got '" + s + "'");
    }
  }
  c.sequential = r.get_choice("mode", "sample", {"sample", "sequential"}) == "sequential";
  c.workers_where = r.where("workers");
  if (r.has("workers")) {
    bool is_list = true;
    try {
      c.workers = r.get<std::vector<std::string>>("workers", {});
    } catch (const ConfigError&) {
      is_list = false;
    }
    if (!is_list) {
      std::string s;
      try {
        s = r.get<std::string>("workers", "all");
      } catch (const ConfigError&) {
        r.fail_at("workers", "expected a list of worker names or 'all'");
      }
      if (s != "all") r.fail_at("workers", "expected a list of worker names or 'all', got '" + s + "'");
    } else if (c.workers.empty()) {
      r.fail_at("workers", "the worker pool is empty: list at least one worker (or write 'all')");
    } else {
      std::vector<std::string> sorted = c.workers;
      std::sort(sorted.begin(), sorted.end());
      auto dup = std::adjacent_find(sorted.begin(), sorted.end());
      if (dup != sorted.end()) r.fail_at("workers", "worker '" + *dup + "' is listed twice");
    }
  } else {
    r.get<std::string>("workers", "all");
  }
  c.max_steps = r.get_in<int>("max_steps", c.max_steps, 1, 64);
  {
    const std::vector<std::string> names =
        r.get<std::vector<std::string>>("finish_rules", {"last", "vote", "most_trusted"});
    if (names.empty()) r.fail_at("finish_rules", "expected at least one of last, vote, most_trusted");
    c.finish_rules.clear();
    for (const auto& n : names) {
      FinishRule fr;
      if (!parse_finish_rule(n, &fr))
        r.fail_at("finish_rules", "unknown finish rule '" + n + "': expected last, vote or most_trusted");
      if (std::find(c.finish_rules.begin(), c.finish_rules.end(), fr) != c.finish_rules.end())
        r.fail_at("finish_rules", "finish rule '" + n + "' is listed twice");
      c.finish_rules.push_back(fr);
    }
    const bool has_last = std::find(c.finish_rules.begin(), c.finish_rules.end(), FinishRule::kLast) != c.finish_rules.end();
    const std::string def = r.get<std::string>("default_finish", has_last ? "last" : finish_rule_name(c.finish_rules[0]));
    if (!parse_finish_rule(def, &c.default_finish))
      r.fail_at("default_finish", "unknown finish rule '" + def + "': expected last, vote or most_trusted");
    if (std::find(c.finish_rules.begin(), c.finish_rules.end(), c.default_finish) == c.finish_rules.end())
      r.fail_at("default_finish", "'" + def + "' is not one of finish_rules");
  }
  c.features = FeaturizerConfig::parse(r.child("features"));
  c.reward = RewardConfig::parse(r.child("reward"));
  {
    ConfigReader p = r.child("pool");
    c.randomize_pool = p.get<bool>("randomize", false);
    c.pool_min_size = p.get_in<int>("min_size", 1, 1, 1 << 20);
    p.finish();
  }
  for (ConfigReader f : r.child_list("faults")) c.faults.push_back(FaultSpec::parse(f));
  c.reward_model = parse_reward_model_kind(r.get_choice("reward_model", "replay", {"replay", "model", "hybrid"}));
  c.predictors = PredictorConfig::parse(r.child("predictors"));
  c.world_seed = r.get<uint64_t>("world_seed", 0);
  c.observe_price_changes = r.get<bool>("observe_price_changes", false);
  c.observe_predictions = r.get<bool>("observe_predictions", false);
  r.finish();
  return c;
}

// ---------------------------------------------------------------------------------------------
// World

std::shared_ptr<const ConductorWorld> ConductorWorld::build(const ConductorEnvConfig& config) {
  std::shared_ptr<const TraceSet> traces;
  if (config.synthetic)
    traces = std::make_shared<const TraceSet>(synthesize(config.synth, default_catalog()));
  else
    traces = std::make_shared<const TraceSet>(read_traces(config.traces_path));
  return build(config, std::move(traces));
}

std::shared_ptr<const ConductorWorld> ConductorWorld::build(const ConductorEnvConfig& config,
                                                            std::shared_ptr<const TraceSet> traces) {
  auto w = std::make_shared<ConductorWorld>();
  const TraceSet& T = *traces;
  const std::string src = !config.traces_path.empty() ? config.traces_path : T.source.empty() ? std::string("traces") : T.source;
  if (!T.has_outcomes()) fail(src, ": the trace set has no /outcomes: the environment needs full-information outcomes");
  w->traces = traces;
  // Workers.
  if (config.workers.empty()) {
    for (std::size_t m = 0; m < T.n_models(); ++m) w->workers.push_back(static_cast<int>(m));
  } else {
    for (const auto& name : config.workers) {
      const int m = T.model_index(name);
      if (m < 0) fail(config.workers_where, ": unknown worker '", name, "' (workers in ", src, ": ", join(T.model_name), ")");
      w->workers.push_back(m);
    }
  }
  if (w->workers.empty()) fail(src, ": no workers: the worker pool is empty");
  const int M = static_cast<int>(w->workers.size());
  if (config.pool_min_size > M)
    fail("env.pool.min_size: ", config.pool_min_size, " is larger than the number of workers (", M, ")");
  for (int m : w->workers) {
    w->worker_names.push_back(T.model_name[m]);
    for (const auto* prices : {&T.price_in_per_mtok, &T.price_out_per_mtok})
      if (!prices->empty() && (*prices)[m] < 0)
        fail(src, ": ", prices == &T.price_in_per_mtok ? "/models/price_in_per_mtok[" : "/models/price_out_per_mtok[", m,
             "] (worker '", T.model_name[m], "'): negative price ", (*prices)[m]);
  }
  // Features.
  w->featurizer = QueryFeaturizer::for_traces(config.features, T);
  w->feature_dim = w->featurizer.dim();
  w->features = w->featurizer.featurize_all(T);
  // Predictors: needed by model / hybrid, and by replay when a logged call lacks latency.
  bool need_predictors = config.reward_model != RewardModelKind::kReplay;
  for (std::size_t q = 0; q < T.n_queries() && !need_predictors; ++q)
    for (int m : w->workers) {
      const std::size_t k = T.at(q, m);
      if (!std::isnan(T.quality[k]) && !std::isnan(T.cost_usd[k]) && (T.latency_s.empty() || std::isnan(T.latency_s[k]))) {
        need_predictors = true;
        break;
      }
    }
  if (need_predictors) {
    if (T.split_indices(Split::kTrain).empty())
      fail(src, ": the train split is empty: reward model '", reward_model_name(config.reward_model),
           "' (or the latency model for traces without latency) is fitted on it");
    w->predictors = std::make_shared<const WorldPredictors>(
        WorldPredictors::fit(T, w->features, w->feature_dim, Split::kTrain, config.predictors));
  }
  w->outcomes = build_outcomes(T, w->features, w->feature_dim, config.reward_model, w->predictors.get(), config.world_seed);
  // Trust, expected cost and scales from the training split (all queries if it is empty).
  std::vector<std::size_t> train = T.split_indices(Split::kTrain);
  if (train.empty())
    for (std::size_t q = 0; q < T.n_queries(); ++q) train.push_back(q);
  const OutcomeTable& O = w->outcomes;
  double max_lat = 0;
  for (int k = 0; k < M; ++k) {
    const int m = w->workers[k];
    double sq = 0, sc = 0, sl = 0;
    int n = 0;
    for (std::size_t q : train) {
      const std::size_t i = O.at(q, m);
      if (!O.available[i]) continue;
      sq += O.quality[i];
      sc += O.cost_usd[i];
      sl += O.latency_s[i];
      ++n;
    }
    w->trust.push_back(n ? sq / n : 0.0);
    w->expected_cost.push_back(n ? sc / n : 0.0);
    max_lat = std::max(max_lat, n ? sl / n : 0.0);
  }
  const double max_cost = *std::max_element(w->expected_cost.begin(), w->expected_cost.end());
  w->cost_scale = max_cost > 0 ? max_cost : 1.0;
  w->latency_scale = max_lat > 0 ? max_lat : 1.0;
  // Split.
  for (std::size_t q : T.split_indices(config.split)) w->split_queries.push_back(static_cast<uint32_t>(q));
  if (w->split_queries.empty()) fail(src, ": the ", split_name(config.split), " split has no queries");
  for (uint32_t q : w->split_queries) w->split_tasks.push_back(T.query_task[q]);
  std::sort(w->split_tasks.begin(), w->split_tasks.end());
  w->split_tasks.erase(std::unique(w->split_tasks.begin(), w->split_tasks.end()), w->split_tasks.end());
  w->queries_by_task.resize(w->split_tasks.size());
  for (uint32_t q : w->split_queries) {
    const auto it = std::lower_bound(w->split_tasks.begin(), w->split_tasks.end(), T.query_task[q]);
    w->queries_by_task[it - w->split_tasks.begin()].push_back(q);
  }
  return w;
}

std::shared_ptr<const WorldPredictors> world_predictors(const ConductorWorld& world, const PredictorConfig& config,
                                                        const std::string& what) {
  if (world.predictors) return world.predictors;
  if (world.traces->split_indices(Split::kTrain).empty())
    fail(what, ": the quality predictors are fitted on the training split, which has no queries");
  return std::make_shared<const WorldPredictors>(
      WorldPredictors::fit(*world.traces, world.features, world.feature_dim, Split::kTrain, config));
}

ConductorWorldSpec conductor_world_spec(const ConductorWorld& W, const ConductorEnvConfig& config,
                                        std::shared_ptr<const WorldPredictors> predictors) {
  const TraceSet& T = *W.traces;
  ConductorWorldSpec spec;
  spec.featurizer = W.featurizer;
  for (std::size_t k = 0; k < W.workers.size(); ++k) {
    const int m = W.workers[k];
    ConductorWorldSpec::Worker w;
    w.name = W.worker_names[k];
    w.provider = T.model_provider.empty() ? "" : T.model_provider[m];
    w.price_in_per_mtok = T.price_in_per_mtok.empty() ? 0.0 : T.price_in_per_mtok[m];
    w.price_out_per_mtok = T.price_out_per_mtok.empty() ? 0.0 : T.price_out_per_mtok[m];
    w.expected_cost_usd = W.expected_cost[k];
    w.trust = W.trust[k];
    spec.workers.push_back(std::move(w));
  }
  spec.cost_scale = W.cost_scale;
  spec.latency_scale = W.latency_scale;
  spec.max_steps = config.max_steps;
  spec.finish_rules = config.finish_rules;
  spec.default_finish = config.default_finish;
  spec.observe_price_changes = config.observe_price_changes;
  if (config.observe_predictions) {
    if (!predictors) predictors = world_predictors(W, config.predictors, "env.observe_predictions");
    auto qp = std::make_shared<QueryPredictor>(QueryPredictor::from(*predictors, T, W.workers));
    qp->set_reward(config.reward.w_quality, config.reward.w_cost);
    spec.predictions = std::move(qp);
  }
  if (config.reward.budget.mode == BudgetMode::kCap) spec.budget_cap_usd = config.reward.budget.cap_usd;
  if (config.reward.cost_conditioned()) {
    spec.cost_conditioning.w_cost_min = config.reward.w_cost_min;
    spec.cost_conditioning.w_cost_max = config.reward.w_cost_max;
    spec.cost_conditioning.w_cost = config.reward.w_cost;
  }
  return spec;
}

// ---------------------------------------------------------------------------------------------
// Environment

ConductorEnv::ConductorEnv(const ConductorEnvConfig& config, std::shared_ptr<const ConductorWorld> world, int num_envs)
    : config_(config), world_(std::move(world)), budget_(config.reward.budget) {
  if (num_envs < 1) fail("env.num_envs: expected at least 1 environment, got ", num_envs);
  const ConductorWorld& W = *world_;
  num_envs_ = num_envs;
  M_ = static_cast<int>(W.workers.size());
  rules_ = config.finish_rules;
  R_ = static_cast<int>(rules_.size());
  A_ = M_ + R_;
  default_rule_action_ = M_ + static_cast<int>(std::find(rules_.begin(), rules_.end(), config.default_finish) - rules_.begin());
  CONDUCTOR_CHECK(default_rule_action_ < A_);
  faults_ = FaultModel(config.faults, W.worker_names, W.split_tasks);
  has_faults_ = !faults_.empty();

  if (config.observe_predictions)
    router_predictors_ = world_predictors(W, config.predictors, "env.observe_predictions");
  world_spec_ = conductor_world_spec(W, config, router_predictors_);
  writer_ = ConductorObsWriter(world_spec_);
  const ObsLayout& L = writer_.layout();

  spec_.id = "conductor";
  spec_.obs_dim = L.dim;
  spec_.n_actions = A_;
  spec_.max_episode_steps = config.max_steps;
  for (const auto& n : W.worker_names) spec_.action_names.push_back("call:" + n);
  for (FinishRule r : rules_) spec_.action_names.push_back(std::string("finish:") + finish_rule_name(r));
  spec_.extra_names = {"quality", "cost_usd", "latency_s", "calls", "failed_calls", "answered", "query_index", "pass"};
  CONDUCTOR_CHECK(static_cast<int>(spec_.extra_names.size()) == kNumExtras);

  // Packed outcomes of the env workers.
  const OutcomeTable& O = W.outcomes;
  cells_.resize(O.n_queries * M_);
  for (std::size_t q = 0; q < O.n_queries; ++q)
    for (int k = 0; k < M_; ++k) {
      const std::size_t i = O.at(q, W.workers[k]);
      Cell& c = cells_[q * M_ + k];
      c.available = O.available[i];
      c.cost_usd = c.available ? O.cost_usd[i] : 0.0;
      c.quality = c.available ? O.quality[i] : 0.f;
      c.latency_s = c.available ? O.latency_s[i] : 0.f;
      c.answer = O.answer[i];
      c.output_tokens = std::max(0, O.output_tokens[i]);
      c.error = c.available ? O.error[i] : uint8_t{kOk};
    }
  if (M_ <= 64) {
    available_bits_.assign(O.n_queries, 0);
    for (std::size_t q = 0; q < O.n_queries; ++q)
      for (int k = 0; k < M_; ++k)
        if (cells_[q * M_ + k].available) available_bits_[q] |= uint64_t{1} << k;
  }

  // Best single worker on the training split (the expert for warm starts).
  double best = -1e300;
  for (int k = 0; k < M_; ++k) {
    const double v = config.reward.w_quality * W.trust[k] - config.reward.w_cost * W.expected_cost[k];
    if (v > best) {
      best = v;
      expert_worker_ = k;
    }
  }

  // Per-task means on the training split (the per-task expert), over the same available cells.
  {
    const TraceSet& T = *W.traces;
    std::vector<std::size_t> train = T.split_indices(Split::kTrain);
    std::map<std::string, int> task_row;
    for (std::size_t q : train) task_row.emplace(T.query_task[q], 0);
    int rows = 0;
    for (auto& kv : task_row) kv.second = rows++;
    task_of_query_.assign(T.n_queries(), -1);
    for (std::size_t q = 0; q < T.n_queries(); ++q) {
      const auto it = task_row.find(T.query_task[q]);
      if (it != task_row.end()) task_of_query_[q] = it->second;
    }
    task_quality_.assign(static_cast<std::size_t>(rows) * M_, 0.0);
    task_cost_.assign(static_cast<std::size_t>(rows) * M_, 0.0);
    std::vector<int> n(static_cast<std::size_t>(rows) * M_, 0);
    for (std::size_t q : train)
      for (int k = 0; k < M_; ++k) {
        const Cell& c = cells_[q * M_ + k];
        if (!c.available) continue;
        const std::size_t j = static_cast<std::size_t>(task_of_query_[q]) * M_ + k;
        task_quality_[j] += c.quality;
        task_cost_[j] += c.cost_usd;
        ++n[j];
      }
    for (std::size_t j = 0; j < n.size(); ++j) {
      const int k = static_cast<int>(j % M_);
      // A worker never seen on a task scores its global means there.
      task_quality_[j] = n[j] ? task_quality_[j] / n[j] : W.trust[k];
      task_cost_[j] = n[j] ? task_cost_[j] / n[j] : W.expected_cost[k];
    }
  }

  const std::size_t N = num_envs_;
  obs_.assign(N * L.dim, 0.f);
  final_obs_.assign(N * L.dim, 0.f);
  reward_.assign(N, 0.f);
  mask_.assign(N * A_, 0);
  terminated_.assign(N, 0);
  truncated_.assign(N, 0);
  finished_.reserve(N);
  spare_extras_.resize(N);
  for (auto& e : spare_extras_) e.reserve(kNumExtras);
  spare_top_ = N;
  slots_.resize(N);
  rngs_.resize(N);
  if (config.reward.cost_conditioned()) w_cost_.assign(N, config.reward.w_cost);
  views_.resize(N * config.max_steps);
  call_quality_.resize(N * config.max_steps);
  pool_.assign(N * M_, 0);
  called_.assign(N * M_, 0);
  fx_.resize(N);
  for (auto& f : fx_) faults_.init(f);
  scratch_.resize(N * M_);
  unit_price_factor_.assign(M_, 1.f);
  reset(0);
}

void ConductorEnv::reset(uint64_t seed) {
  for (auto& r : finished_) spare_extras_[spare_top_++].swap(r.extras);
  finished_.clear();
  cursor_ = 0;
  pass0_finished_ = 0;
  for (int i = 0; i < num_envs_; ++i) {
    rngs_[i].reseed(derive_seed(seed, static_cast<uint64_t>(first_ + i)));
    slots_[i] = Slot{};
    faults_.init(fx_[i]);
    reward_[i] = 0.f;
    terminated_[i] = 0;
    truncated_[i] = 0;
  }
  std::fill(final_obs_.begin(), final_obs_.end(), 0.f);
  for (int i = 0; i < num_envs_; ++i) begin_episode(i);
}

void ConductorEnv::begin_episode(int i) {
  const ConductorWorld& W = *world_;
  Slot& s = slots_[i];
  Rng& rng = rngs_[i];
  s.steps = 0;
  s.n_calls = 0;
  s.n_answers = 0;
  s.cum_cost = 0;
  s.cum_latency = 0;
  s.ret = 0;
  FaultEffects<float>& fx = fx_[i];
  if (has_faults_) faults_.begin_episode(s.episode, rng, fx);
  // Query.
  const std::size_t n = W.split_queries.size();
  if (config_.sequential) {
    s.query = W.split_queries[cursor_ % n];
    s.pass = static_cast<int64_t>(cursor_ / n);
    ++cursor_;
  } else if (has_faults_ && fx.task_mix >= 0) {
    const std::vector<double>& wts = faults_.task_mixes()[fx.task_mix];
    double total = 0;
    for (double v : wts) total += v;
    double u = rng.uniform() * total;
    std::size_t t = 0;
    while (t + 1 < wts.size() && (u >= wts[t] || wts[t] == 0)) {
      u -= wts[t];
      ++t;
    }
    while (wts[t] == 0 && t > 0) --t;  // guards rounding at the end of the list
    const auto& qs = W.queries_by_task[t];
    s.query = qs[index_below(rng, qs.size())];
    s.pass = 0;
  } else {
    s.query = W.split_queries[index_below(rng, n)];
    s.pass = 0;
  }
  // Pool.
  uint8_t* pool = pool_.data() + static_cast<std::size_t>(i) * M_;
  const bool use_bits = !available_bits_.empty();
  const uint64_t bits = use_bits ? available_bits_[s.query] : 0;
  const Cell* cells = cells_.data() + static_cast<std::size_t>(s.query) * M_;
  auto available = [&](int k) -> uint8_t { return use_bits ? (bits >> k) & 1 : cells[k].available; };
  if (config_.randomize_pool) {
    int* idx = scratch_.data() + static_cast<std::size_t>(i) * M_;
    for (int k = 0; k < M_; ++k) idx[k] = k;
    const int size = config_.pool_min_size + static_cast<int>(index_below(rng, M_ - config_.pool_min_size + 1));
    std::memset(pool, 0, M_);
    for (int j = 0; j < size; ++j) {
      const int r = j + static_cast<int>(index_below(rng, M_ - j));
      std::swap(idx[j], idx[r]);
      pool[idx[j]] = 1;
    }
    for (int k = 0; k < M_; ++k) pool[k] = pool[k] && available(k);
  } else {
    for (int k = 0; k < M_; ++k) pool[k] = available(k);
  }
  if (has_faults_)
    for (int k = 0; k < M_; ++k) pool[k] = pool[k] && !fx.announced_down[k];
  std::memset(called_.data() + static_cast<std::size_t>(i) * M_, 0, M_);
  // Cost weight: log-uniform over the range while training; the default weight in sequential
  // (evaluation) mode.
  if (!w_cost_.empty()) {
    const RewardConfig& rc = config_.reward;
    w_cost_[i] = config_.sequential
                     ? rc.w_cost
                     : std::exp(rng.uniform(std::log(rc.w_cost_min), std::log(rc.w_cost_max)));
  }
  writer_.write_start(view_of(i, false), obs_.data() + static_cast<std::size_t>(i) * layout().dim);
  refresh_mask(i);
}

void ConductorEnv::refresh_mask(int i) {
  const double cap = config_.reward.budget.mode == BudgetMode::kCap ? config_.reward.budget.cap_usd : -1.0;
  writer_.write_mask(view_of(i, false), cap, mask_.data() + static_cast<std::size_t>(i) * A_,
                     obs_.data() + static_cast<std::size_t>(i) * layout().dim);
}

void ConductorEnv::do_call(int i, int k) {
  Slot& s = slots_[i];
  const Cell& c = cells_[static_cast<std::size_t>(s.query) * M_ + k];
  const std::size_t base = static_cast<std::size_t>(i) * config_.max_steps;
  ConductorStepView& v = views_[base + s.n_calls];
  v.worker = k;
  v.error = c.error;
  v.output_tokens = c.output_tokens;
  v.answer = c.error == kOk ? c.answer : -1;
  v.latency_s = c.latency_s;
  v.cost_usd = c.cost_usd;
  float quality = c.error == kOk ? c.quality : 0.f;
  if (has_faults_ && fx_[i].call(k, rngs_[i]).apply(quality, v.cost_usd, v.latency_s, v.answer)) {
    v.error = kTimeout;  // a failed call (outage or timeout) times out
    v.output_tokens = 0;
  }
  v.agreement = answer_agreement(views_.data() + base, s.n_calls, v);
  call_quality_[base + s.n_calls] = quality;
  ++s.n_calls;
  ++s.steps;
  if (v.error == kOk) ++s.n_answers;
  s.cum_cost += v.cost_usd;
  s.cum_latency += v.latency_s;
  called_[static_cast<std::size_t>(i) * M_ + k] = 1;

  writer_.write_call(view_of(i, false), obs_.data() + static_cast<std::size_t>(i) * layout().dim);

  if (s.steps >= config_.max_steps)
    do_finish(i, rules_[default_rule_action_ - M_], /*truncated=*/true);
  else
    refresh_mask(i);
}

int ConductorEnv::final_call(int i, FinishRule rule) const {
  const ConductorStepView* c = views_.data() + static_cast<std::size_t>(i) * config_.max_steps;
  return final_call_index(rule, c, slots_[i].n_calls, world_->trust,
                          [](const ConductorStepView& v) { return v.answer; });
}

void ConductorEnv::do_finish(int i, FinishRule rule, bool truncated) {
  Slot& s = slots_[i];
  const int j = final_call(i, rule);
  const double quality = j >= 0 ? call_quality_[static_cast<std::size_t>(i) * config_.max_steps + j] : 0.0;
  const float r = static_cast<float>(
      config_.reward.compute_with(episode_cost_weight(i), quality, s.cum_cost, s.cum_latency, j >= 0,
                                  budget_.lambda()));
  reward_[i] = r;
  s.ret += r;
  // The workflow's outcome is final either way (terminated: nothing to bootstrap); `truncated`
  // additionally marks that the step limit applied the default rule (Gymnasium allows both).
  terminated_[i] = 1;
  truncated_[i] = truncated ? 1 : 0;
  budget_.observe(s.cum_cost);

  const int D = layout().dim;
  float* o = obs_.data() + static_cast<std::size_t>(i) * D;
  writer_.write_finished(s.steps, o);
  std::memcpy(final_obs_.data() + static_cast<std::size_t>(i) * D, o, sizeof(float) * D);

  finished_.emplace_back();
  EpisodeRecord& rec = finished_.back();
  rec.extras.swap(spare_extras_[--spare_top_]);
  rec.extras.resize(kNumExtras);
  rec.env_index = i;
  rec.episode_return = s.ret;
  rec.length = s.steps;
  rec.truncated = truncated;
  int failed = 0;
  const ConductorStepView* c = views_.data() + static_cast<std::size_t>(i) * config_.max_steps;
  for (int l = 0; l < s.n_calls; ++l) failed += (c[l].error != kOk);
  rec.extras[kQuality] = quality;
  rec.extras[kCostUsd] = s.cum_cost;
  rec.extras[kLatencyS] = s.cum_latency;
  rec.extras[kCalls] = s.n_calls;
  rec.extras[kFailedCalls] = failed;
  rec.extras[kAnswered] = j >= 0 ? 1.0 : 0.0;
  rec.extras[kQueryIndex] = s.query;
  rec.extras[kPass] = static_cast<double>(s.pass);
  if (config_.sequential && s.pass == 0) ++pass0_finished_;

  ++s.episode;
  begin_episode(i);
}

void ConductorEnv::step(const int32_t* actions) {
  for (auto& r : finished_) spare_extras_[spare_top_++].swap(r.extras);
  finished_.clear();
  for (int i = 0; i < num_envs_; ++i) {
    reward_[i] = 0.f;
    terminated_[i] = 0;
    truncated_[i] = 0;
    const int a = actions[i];
#ifndef NDEBUG
    if (a < 0 || a >= A_ || !mask_[static_cast<std::size_t>(i) * A_ + a])
      throw InternalError(detail::concat("conductor env ", i, ": action ", a,
                                         (a >= 0 && a < A_ ? " (" + spec_.action_names[a] + ")" : std::string()),
                                         " is not allowed by the action mask (invalid actions must be masked)"));
#endif
    if (a < M_) {
      do_call(i, a);
    } else {
      ++slots_[i].steps;
      do_finish(i, rules_[a - M_], /*truncated=*/false);
    }
  }
}

// The cascade baseline of `conductor eval` (world/baseline_rules.h) as an expert: fitted once on the
// world's training split with the same predictors; its threshold sweep on that split is replayed once
// and re-scored for each episode's cost weight.
struct CascadeExpert {
  eval::Cascade cascade;
  std::unique_ptr<eval::CascadeSweep> sweep;
  std::vector<int> position;  // env worker -> its position in the chain, -1 = off it
};

int ConductorEnv::router_worker(int i, const uint8_t* m, double wc) const {
  // The router baseline's rule over the workers the episode may call, at the episode's prices:
  // predicted quality and cost from the query's features.
  const ConductorWorld& W = *world_;
  const WorldPredictors& P = *router_predictors_;
  const uint32_t q = slots_[i].query;
  const float* x = W.features.data() + static_cast<std::size_t>(q) * W.feature_dim;
  const float* factor = has_faults_ ? fx_[i].price_factor.data() : unit_price_factor_.data();
  int worker = -1;
  double best = -1e300;
  for (int k = 0; k < M_; ++k) {
    if (!m[k]) continue;
    const auto model = static_cast<std::size_t>(W.workers[k]);
    const double cost = P.predicted_cost_usd(*W.traces, q, model, x) * factor[k];
    const double v = config_.reward.w_quality * P.quality_prob(model, x) - wc * cost;
    if (v > best) {
      best = v;
      worker = k;
    }
  }
  return worker;
}

int ConductorEnv::cascade_action(int i, const uint8_t* m, double wc) const {
  const CascadeExpert& C = *cascade_expert_;
  const std::vector<int>& chain = C.cascade.chain();
  const Slot& s = slots_[i];
  const ConductorStepView* v = views_.data() + static_cast<std::size_t>(i) * config_.max_steps;
  std::size_t next = 0;
  if (s.n_calls > 0) {
    const ConductorStepView& last = v[s.n_calls - 1];
    const int k = C.position[static_cast<std::size_t>(last.worker)];
    if (k < 0) return -1;  // a state the cascade never reaches: finish
    next = static_cast<std::size_t>(k) + 1;
    if (last.error == kOk) {
      bool agrees = false, comparable = false;
      if (last.answer >= 0)
        for (int j = 0; j + 1 < s.n_calls; ++j) {
          if (v[j].answer < 0) continue;
          comparable = true;
          agrees |= v[j].answer == last.answer;
        }
      const ConductorWorld& W = *world_;
      const float* x = W.features.data() + static_cast<std::size_t>(s.query) * W.feature_dim;
      const double pq = router_predictors_->quality_prob(static_cast<std::size_t>(W.workers[last.worker]), x);
      const double w = wc / std::max(1e-12, config_.reward.w_quality);
      if (next == chain.size() || C.cascade.score(static_cast<std::size_t>(k), pq, agrees, comparable) >= C.sweep->best_threshold(w))
        return -1;
    }
  }
  for (; next < chain.size(); ++next)
    if (m[chain[next]]) return chain[next];
  return -1;
}

bool ConductorEnv::expert_actions(int32_t* actions, Expert kind) const {
  const bool rule = kind == Expert::kRouter || kind == Expert::kCascade;
  if (rule && !router_predictors_)
    router_predictors_ = world_predictors(*world_, config_.predictors,
                                          "bc_warmstart.expert: " + expert_name(kind) + " (traces '" +
                                              config_.traces_path + "')");
  if (kind == Expert::kCascade && !cascade_expert_) {
    const ConductorWorld& W = *world_;
    auto c = std::make_shared<CascadeExpert>();
    const auto train = eval::ReplayTable::from_outcomes(*W.traces, W.outcomes, W.workers, Split::kTrain);
    const auto pred = eval::predict(train, *W.traces, *router_predictors_, W.features, W.feature_dim, W.workers);
    c->cascade = eval::Cascade::fit(train, pred, eval::pareto_chain(train.mean_quality(), train.mean_cost()));
    c->sweep = std::make_unique<eval::CascadeSweep>(c->cascade, train, pred);
    c->position.assign(static_cast<std::size_t>(M_), -1);
    for (std::size_t j = 0; j < c->cascade.chain().size(); ++j) c->position[c->cascade.chain()[j]] = static_cast<int>(j);
    cascade_expert_ = std::move(c);
  }
  // The cascade finishes with the `last` answer (what its baseline scores), when that rule is offered.
  const auto last_rule = std::find(rules_.begin(), rules_.end(), FinishRule::kLast);
  const int last_action = last_rule == rules_.end() ? default_rule_action_ : M_ + static_cast<int>(last_rule - rules_.begin());
  for (int i = 0; i < num_envs_; ++i) {
    const uint8_t* m = mask_.data() + static_cast<std::size_t>(i) * A_;
    const double wc = episode_cost_weight(i);  // cost-conditioned runs draw one per episode
    int a = -1;
    if (kind == Expert::kCascade) {
      const int worker = cascade_action(i, m, wc);
      if (worker >= 0) a = worker;
      else if (slots_[i].n_answers > 0 && m[last_action]) a = last_action;
    } else {
      int worker = kind == Expert::kRouter ? router_worker(i, m, wc) : fixed_worker(i, kind, wc);
      if (worker < 0) worker = expert_worker_;
      if (slots_[i].n_answers > 0 && m[default_rule_action_]) a = default_rule_action_;
      else if (m[worker]) a = worker;
    }
    for (int b = 0; b < A_ && a < 0; ++b)
      if (m[b]) a = b;
    actions[i] = a;
  }
  return true;
}

int ConductorEnv::fixed_worker(int i, Expert kind, double wc) const {
  const ConductorWorld& W = *world_;
  const int row = kind == Expert::kPerTask ? task_of_query_[slots_[i].query] : -1;
  int worker = expert_worker_;
  if (row >= 0) {
    double best = -1e300;
    for (int k = 0; k < M_; ++k) {
      const std::size_t j = static_cast<std::size_t>(row) * M_ + k;
      const double v = config_.reward.w_quality * task_quality_[j] - wc * task_cost_[j];
      if (v > best) {
        best = v;
        worker = k;
      }
    }
  } else if (kind == Expert::kPerTask && !w_cost_.empty()) {
    double best = -1e300;
    for (int k = 0; k < M_; ++k) {
      const double v = config_.reward.w_quality * W.trust[k] - wc * W.expected_cost[k];
      if (v > best) {
        best = v;
        worker = k;
      }
    }
  }
  return worker;
}

namespace {
json reward_json(const RewardConfig& r) {
  const char* mode = r.budget.mode == BudgetMode::kCap ? "cap" : r.budget.mode == BudgetMode::kLagrange ? "lagrange" : "none";
  return {{"w_quality", r.w_quality},
          {"w_cost", r.w_cost},
          {"w_latency", r.w_latency},
          {"no_answer_penalty", r.no_answer_penalty},
          {"budget", {{"mode", mode}, {"cap_usd", r.budget.cap_usd}, {"target_mean_cost_usd", r.budget.target_mean_cost_usd}}}};
}
}  // namespace

std::unique_ptr<EnvExportSpec> ConductorEnv::export_spec() const {
  auto out = std::make_unique<EnvExportSpec>();
  const ConductorWorldSpec& spec = world_spec_;
  out->world = spec.to_json();
  out->serving_world = std::make_shared<ConductorLiveWorld>(spec);
  if (spec.featurizer.needs_embedding())
    out->probe_query.embedding.assign(static_cast<std::size_t>(spec.featurizer.encoder().dim), 0.f);
  out->action_names = spec.action_names();
  out->reward = reward_json(config_.reward);
  return out;
}

void ConductorEnv::replay_first_steps(uint64_t seed, const std::function<void(const ObsBatch&, int32_t*)>& act,
                                      const FirstStep& visit, const std::string& what) {
  const int N = num_envs_;
  reset(seed);
  const int64_t max_steps = static_cast<int64_t>(split_size() + N) * (spec_.max_episode_steps + 1) + 16;
  std::vector<uint8_t> seen(world_->traces->n_queries(), 0);
  run_env_loop(
      *this,
      [&](const ObsBatch& obs, int32_t* actions) {
        act(obs, actions);
        for (int i = 0; i < N; ++i) {
          const ConductorStateView& view = obs.states[i];
          if (view.n_steps != 0 || view.query < 0) continue;
          const auto q = static_cast<std::size_t>(view.query);
          if (seen[q]) continue;
          seen[q] = 1;
          visit(obs, i, q, actions);
        }
      },
      [](VectorEnv&, const int32_t*) {}, [&] { return sequential_pass_complete(); }, max_steps, what);
}

namespace {
constexpr uint32_t kStateMagic = 0x434E4456;  // "CNDV"
constexpr uint32_t kStateVersion = 1;
}  // namespace

std::string ConductorEnv::save_state() const {
  StateWriter w;
  w.pod(kStateMagic);
  w.pod(kStateVersion);
  w.pod(num_envs_);
  w.pod(layout().dim);
  w.pod(A_);
  w.pod(config_.max_steps);
  w.vec(obs_);
  w.vec(final_obs_);
  w.vec(reward_);
  w.vec(mask_);
  w.vec(terminated_);
  w.vec(truncated_);
  w.vec(slots_);
  for (const Rng& r : rngs_) w.rng(r);
  w.vec(views_);
  w.vec(call_quality_);
  w.vec(pool_);
  w.vec(called_);
  for (const FaultEffects<float>& f : fx_) {
    w.vec(f.down);
    w.vec(f.announced_down);
    w.vec(f.down_latency_s);
    w.vec(f.timeout_prob);
    w.vec(f.timeout_latency_s);
    w.vec(f.spike_prob);
    w.vec(f.spike_factor);
    w.vec(f.price_factor);
    w.pod(f.task_mix);
    w.vec(f.window_until);
  }
  w.pod(cursor_);
  w.pod<uint64_t>(pass0_finished_);
  w.pod(budget_.state());
  if (budget_.adaptive()) w.pod(budget_.integral());  // lagrange only: other states keep their format
  if (!w_cost_.empty()) w.vec(w_cost_);  // cost-conditioned only: other states keep their format
  return w.out;
}

void ConductorEnv::load_state(const std::string& blob) {
  StateReader r{blob, "conductor env"};
  if (r.pod<uint32_t>() != kStateMagic) fail("conductor env: not a conductor environment state");
  const uint32_t version = r.pod<uint32_t>();
  if (version != kStateVersion) fail("conductor env: environment state version ", version, ", expected ", kStateVersion);
  const int n = r.pod<int>(), dim = r.pod<int>(), a = r.pod<int>(), ms = r.pod<int>();
  if (n != num_envs_ || dim != layout().dim || a != A_ || ms != config_.max_steps)
    fail("conductor env: environment state is for ", n, " envs, obs_dim ", dim, ", ", a, " actions, max_steps ", ms,
         "; this environment has ", num_envs_, ", ", layout().dim, ", ", A_, ", ", config_.max_steps);
  r.vec(obs_, "obs");
  r.vec(final_obs_, "final_obs");
  r.vec(reward_, "reward");
  r.vec(mask_, "mask");
  r.vec(terminated_, "terminated");
  r.vec(truncated_, "truncated");
  r.vec(slots_, "slot");
  for (Rng& g : rngs_) r.rng(g);
  r.vec(views_, "call");
  r.vec(call_quality_, "call quality");
  r.vec(pool_, "pool");
  r.vec(called_, "called");
  for (FaultEffects<float>& f : fx_) {
    r.vec(f.down, "fault");
    r.vec(f.announced_down, "fault");
    r.vec(f.down_latency_s, "fault");
    r.vec(f.timeout_prob, "fault");
    r.vec(f.timeout_latency_s, "fault");
    r.vec(f.spike_prob, "fault");
    r.vec(f.spike_factor, "fault");
    r.vec(f.price_factor, "fault");
    f.task_mix = r.pod<int>();
    r.vec(f.window_until, "fault window");
  }
  cursor_ = r.pod<uint64_t>();
  pass0_finished_ = r.pod<uint64_t>();
  budget_.set_state(r.pod<BudgetController::State>());
  if (budget_.adaptive()) budget_.set_integral(r.pod<double>());
  if (!w_cost_.empty()) r.vec(w_cost_, "episode cost weight");
  r.finish();
  for (auto& rec : finished_) spare_extras_[spare_top_++].swap(rec.extras);
  finished_.clear();
}

ConductorStateView ConductorEnv::view_of(int i, bool with_text) const {
  const Slot& s = slots_[i];
  const ConductorWorld& W = *world_;
  ConductorStateView v;
  v.query = static_cast<int>(s.query);
  if (with_text) {
    const TraceSet& T = *W.traces;
    if (T.has_text()) v.text = T.query_text[s.query];
    v.task = T.query_task[s.query];
  }
  v.input_tokens = W.traces->input_tokens.empty() ? -1 : W.traces->input_tokens[s.query];
  v.features = W.features.data() + static_cast<std::size_t>(s.query) * W.feature_dim;
  v.n_workers = M_;
  v.pool = pool_.data() + static_cast<std::size_t>(i) * M_;
  v.called = called_.data() + static_cast<std::size_t>(i) * M_;
  v.price_factor = has_faults_ ? fx_[i].price_factor.data() : unit_price_factor_.data();
  v.expected_cost_usd = W.expected_cost.data();
  v.steps = views_.data() + static_cast<std::size_t>(i) * config_.max_steps;
  v.n_steps = s.n_calls;
  v.n_answers = s.n_answers;
  v.max_steps = config_.max_steps;
  v.cum_cost_usd = s.cum_cost;
  v.cum_latency_s = s.cum_latency;
  v.cost_weight = episode_cost_weight(i);
  v.action_mask = mask_.data() + static_cast<std::size_t>(i) * A_;
  return v;
}

ConductorStateView ConductorEnv::state_view(int env) const {
  CONDUCTOR_CHECK(env >= 0 && env < num_envs_);
  return view_of(env, true);
}

const ConductorStateView* ConductorEnv::state_views() const {
  state_cache_.resize(static_cast<std::size_t>(num_envs_));
  for (int i = 0; i < num_envs_; ++i) state_cache_[i] = view_of(i, true);
  return state_cache_.data();
}

std::vector<double> ConductorEnv::adaptation_stats() const {
  if (!budget_.adaptive()) return {};
  const BudgetController::State st = budget_.state();
  return {st.sum_cost, static_cast<double>(st.count)};
}

void ConductorEnv::adapt(const std::vector<double>& summed, std::vector<std::pair<std::string, double>>* report) {
  if (!budget_.adaptive()) return;
  CONDUCTOR_CHECK(summed.size() == 2, "conductor env: adapt() takes {sum of costs, episodes}");
  BudgetController::State st = budget_.state();
  const double mean = summed[1] > 0 ? summed[0] / summed[1] : std::nan("");
  if (summed[1] > 0) budget_.update_with(mean);
  st.lambda = budget_.lambda();
  st.sum_cost = 0;
  st.count = 0;
  budget_.set_state(st);
  if (report) {
    report->emplace_back("charts/budget_mean_cost_usd", mean);
    report->emplace_back("charts/budget_lambda", budget_.lambda());
  }
}

std::vector<double> ConductorEnv::adaptive_state() const {
  if (!budget_.adaptive()) return {};
  return {budget_.lambda(), budget_.integral()};
}

void ConductorEnv::set_adaptive_state(const std::vector<double>& state) {
  if (!budget_.adaptive()) return;
  if (state.size() != 2)
    fail("conductor env: adaptive state holds ", state.size(), " values, expected 2 (the budget multiplier and its integral)");
  budget_.set_lambda(state[0]);
  budget_.set_integral(state[1]);
}

namespace builtin_envs {
void register_conductor() {
  register_env("conductor", [](ConfigReader& cfg, int num_envs) -> std::unique_ptr<VectorEnv> {
    const ConductorEnvConfig c = ConductorEnvConfig::parse(cfg);
    return std::make_unique<ConductorEnv>(c, ConductorWorld::build(c), num_envs);
  });
}
}  // namespace builtin_envs

}  // namespace conductor
