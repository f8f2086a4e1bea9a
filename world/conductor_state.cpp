#include "world/conductor_state.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "traces/trace_set.h"
#include "world/predictors.h"

namespace conductor {

float answer_agreement(const ConductorStepView* steps, int n, const ConductorStepView& next) {
  if (next.error != kOk || next.answer < 0) return 0.f;
  int earlier = 0, same = 0;
  for (int j = 0; j < n; ++j) {
    const ConductorStepView& u = steps[j];
    if (u.error != kOk || u.answer < 0) continue;
    ++earlier;
    same += (u.answer == next.answer);
  }
  return earlier > 0 ? static_cast<float>(same) / earlier : 0.f;
}

// ---------------------------------------------------------------------------------------------
// World spec

std::vector<double> ConductorWorldSpec::expected_costs() const {
  std::vector<double> v;
  for (const auto& w : workers) v.push_back(w.expected_cost_usd);
  return v;
}

std::vector<double> ConductorWorldSpec::trusts() const {
  std::vector<double> v;
  for (const auto& w : workers) v.push_back(w.trust);
  return v;
}

std::vector<std::string> ConductorWorldSpec::worker_names() const {
  std::vector<std::string> v;
  for (const auto& w : workers) v.push_back(w.name);
  return v;
}

std::vector<std::string> ConductorWorldSpec::action_names() const {
  std::vector<std::string> v;
  for (const auto& w : workers) v.push_back("call:" + w.name);
  for (FinishRule r : finish_rules) v.push_back(std::string("finish:") + finish_rule_name(r));
  return v;
}

json ConductorWorldSpec::to_json() const {
  json ws = json::array();
  for (const auto& w : workers)
    ws.push_back({{"name", w.name},
                  {"provider", w.provider},
                  {"price_in_per_mtok", w.price_in_per_mtok},  // NaN is written as null (unknown)
                  {"price_out_per_mtok", w.price_out_per_mtok},
                  {"expected_cost_usd", w.expected_cost_usd},
                  {"trust", w.trust}});
  json rules = json::array();
  for (FinishRule r : finish_rules) rules.push_back(finish_rule_name(r));
  json spec = {{"featurizer", featurizer.to_json()},
               {"workers", ws},
               {"cost_scale", cost_scale},
               {"latency_scale", latency_scale},
               {"max_steps", max_steps},
               {"finish_rules", rules},
               {"default_finish", finish_rule_name(default_finish)},
               {"budget_cap_usd", budget_cap_usd >= 0 ? json(budget_cap_usd) : json(nullptr)}};
  spec["observe_price_changes"] = observe_price_changes;
  if (predictions) spec["predictions"] = predictions->to_json();  // absent = not observed
  spec["cost_conditioning"] = nullptr;
  if (cost_conditioning.cost_conditioned())
    spec["cost_conditioning"] = {{"w_cost_min", cost_conditioning.w_cost_min},
                                 {"w_cost_max", cost_conditioning.w_cost_max},
                                 {"w_cost_default", cost_conditioning.w_cost}};
  return spec;
}

namespace {

const json& field(const json& j, const char* key, const std::string& source, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) fail(source, ": ", where, ": missing field '", key, "'");
  return j[key];
}
double number(const json& j, const char* key, const std::string& source, const std::string& where) {
  const json& v = field(j, key, source, where);
  if (!v.is_number()) fail(source, ": ", where, ".", key, ": expected a number, got ", v.dump());
  return v.get<double>();
}
FinishRule rule_of(const json& v, const std::string& source, const std::string& where) {
  FinishRule r;
  if (!v.is_string() || !parse_finish_rule(v.get<std::string>(), &r))
    fail(source, ": ", where, ": unknown finish rule ", v.dump(), " (expected last, vote, most_trusted)");
  return r;
}

}  // namespace

ConductorWorldSpec ConductorWorldSpec::from_json(const json& spec, const std::string& source) {
  ConductorWorldSpec w;
  const std::string where = "world";
  try {
    w.featurizer = QueryFeaturizer::from_json(field(spec, "featurizer", source, where));
  } catch (const Error& e) {
    fail(source, ": world.featurizer: ", e.what());
  } catch (const json::exception& e) {
    fail(source, ": world.featurizer: ", e.what());
  }
  const json& workers = field(spec, "workers", source, where);
  if (!workers.is_array() || workers.empty()) fail(source, ": world.workers: expected a non-empty array");
  for (std::size_t k = 0; k < workers.size(); ++k) {
    const std::string at = "world.workers[" + std::to_string(k) + "]";
    Worker wk;
    const json& n = field(workers[k], "name", source, at);
    if (!n.is_string()) fail(source, ": ", at, ".name: expected a string");
    wk.name = n.get<std::string>();
    if (workers[k].contains("provider") && workers[k]["provider"].is_string())
      wk.provider = workers[k]["provider"].get<std::string>();
    // null = no public list price (e.g. most RouterBench models): live call costs then fall back
    // to the worker's expected (mean training) cost per call.
    auto price = [&](const char* key) {
      const json& v = field(workers[k], key, source, at);
      if (v.is_null()) return std::nan("");
      if (!v.is_number() || v.get<double>() < 0)
        fail(source, ": ", at, ".", key, ": expected null (unknown) or a number >= 0, got ", v.dump());
      return v.get<double>();
    };
    wk.price_in_per_mtok = price("price_in_per_mtok");
    wk.price_out_per_mtok = price("price_out_per_mtok");
    wk.expected_cost_usd = number(workers[k], "expected_cost_usd", source, at);
    wk.trust = number(workers[k], "trust", source, at);
    w.workers.push_back(std::move(wk));
  }
  w.cost_scale = number(spec, "cost_scale", source, where);
  w.latency_scale = number(spec, "latency_scale", source, where);
  if (!(w.cost_scale > 0) || !(w.latency_scale > 0)) fail(source, ": world.cost_scale and latency_scale must be > 0");
  const json& ms = field(spec, "max_steps", source, where);
  if (!ms.is_number_integer() || ms.get<int>() < 1) fail(source, ": world.max_steps: expected an integer >= 1");
  w.max_steps = ms.get<int>();
  const json& cap = field(spec, "budget_cap_usd", source, where);
  if (!cap.is_null()) {
    if (!cap.is_number() || cap.get<double>() < 0) fail(source, ": world.budget_cap_usd: expected null or a number >= 0");
    w.budget_cap_usd = cap.get<double>();
  }
  // Absent in exports written before cost conditioning existed: the same as null.
  if (spec.contains("cost_conditioning") && !spec["cost_conditioning"].is_null()) {
    const json& cc = spec["cost_conditioning"];
    const std::string at = "world.cost_conditioning";
    const double lo = number(cc, "w_cost_min", source, at), hi = number(cc, "w_cost_max", source, at),
                 def = number(cc, "w_cost_default", source, at);
    if (!(lo > 0 && hi > lo && def >= lo && def <= hi))
      fail(source, ": ", at, ": expected 0 < w_cost_min < w_cost_max and w_cost_default in between");
    w.cost_conditioning.w_cost_min = lo;
    w.cost_conditioning.w_cost_max = hi;
    w.cost_conditioning.w_cost = def;
  }
  if (spec.contains("observe_price_changes")) {
    const json& v = spec["observe_price_changes"];
    if (!v.is_boolean()) fail(source, ": world.observe_price_changes: expected true or false, got ", v.dump());
    w.observe_price_changes = v.get<bool>();
  }
  // Absent in exports written before env.observe_predictions existed: the same as null.
  if (spec.contains("predictions") && !spec["predictions"].is_null())
    w.predictions = std::make_shared<const QueryPredictor>(
        QueryPredictor::from_json(spec["predictions"], w.featurizer.dim(), w.n_workers(), source));
  const json& rules = field(spec, "finish_rules", source, where);
  if (!rules.is_array() || rules.empty()) fail(source, ": world.finish_rules: expected a non-empty array");
  for (const auto& r : rules) w.finish_rules.push_back(rule_of(r, source, "world.finish_rules"));
  w.default_finish = rule_of(field(spec, "default_finish", source, where), source, "world.default_finish");
  if (std::find(w.finish_rules.begin(), w.finish_rules.end(), w.default_finish) == w.finish_rules.end())
    fail(source, ": world.default_finish: expected one of world.finish_rules, got ", spec["default_finish"].dump());
  return w;
}

// ---------------------------------------------------------------------------------------------
// Observation writer

namespace {
// log1p(tokens) / 10 as the observation stores it; small counts come from a table of the same
// values (the step loop of the environment writes one per call).
float output_length_obs(int32_t tokens) {
  constexpr int kTable = 8192;
  static const std::vector<float> table = [] {
    std::vector<float> t(kTable);
    for (int i = 0; i < kTable; ++i) t[i] = static_cast<float>(std::log1p(static_cast<double>(i)) / 10.0);
    return t;
  }();
  if (tokens >= 0 && tokens < kTable) return table[tokens];
  return static_cast<float>(std::log1p(static_cast<double>(std::max(0, tokens))) / 10.0);
}
}  // namespace

float price_change_obs(float price_factor) {
  if (!(price_factor > 0.f)) return -4.f;  // free (or a non-positive factor): the clip's floor
  return std::clamp(std::log2(price_factor), -4.f, 4.f);
}

ConductorObsWriter::ConductorObsWriter(const ConductorWorldSpec& spec)
    : n_workers_(spec.n_workers()),
      n_actions_(spec.n_actions()),
      max_steps_(spec.max_steps),
      expected_cost_(spec.expected_costs()),
      cost_scale_(spec.cost_scale),
      latency_scale_(spec.latency_scale),
      preference_(spec.cost_conditioning),
      predictions_(spec.predictions) {
  ObsLayout& L = layout_;
  const int M = n_workers_;
  int o = 0;
  L.features = o;
  L.features_dim = spec.featurizer.dim();
  o += L.features_dim;
  L.pool = o;
  o += M;
  L.prices = o;
  o += M;
  L.called = o;
  o += M;
  L.history = o;
  L.history_slot = M + 4;
  o += max_steps_ * L.history_slot;
  L.summary = o;
  o += 4;
  L.preference = o;
  L.preference_dim = preference_.cost_conditioned() ? 1 : 0;
  o += L.preference_dim;
  L.price_change = o;
  L.price_change_dim = spec.observe_price_changes ? M : 0;
  o += L.price_change_dim;
  L.predictions = o;
  if (predictions_) {
    CONDUCTOR_CHECK(predictions_->n_workers() == M && predictions_->dim() == L.features_dim,
                    "world.predictions: ", predictions_->n_workers(), " workers of ", predictions_->dim(),
                    " features for a world of ", M, " workers and ", L.features_dim, " features");
    L.predictions_dim = 3 * M;
  }
  o += L.predictions_dim;
  L.mask = o;
  o += n_actions_;
  L.dim = o;
}

void ConductorObsWriter::write_start(const ConductorStateView& s, float* o) const {
  const ObsLayout& L = layout_;
  std::memcpy(o + L.features, s.features, sizeof(float) * L.features_dim);
  std::fill(o + L.pool, o + L.dim, 0.f);
  if (L.preference_dim) o[L.preference] = static_cast<float>(preference_.cost_preference(s.cost_weight));
  const double inv_cost = 1.0 / cost_scale_;
  for (int k = 0; k < n_workers_; ++k) {
    o[L.pool + k] = s.pool[k];
    o[L.prices + k] = static_cast<float>(expected_cost_[k] * s.price_factor[k] * inv_cost);
  }
  if (L.price_change_dim)
    for (int k = 0; k < n_workers_; ++k)
      o[L.price_change + k] = price_change_obs(s.price_factor[k]);
  if (L.predictions_dim) {
    const int M = n_workers_;
    for (int k = 0; k < M; ++k) {
      o[L.predictions + k] = static_cast<float>(predictions_->quality(k, s.features));
      o[L.predictions + M + k] =
          static_cast<float>(predictions_->cost_usd(k, s.features, s.input_tokens) * s.price_factor[k] * inv_cost);
    }
    const double w_cost = preference_.cost_conditioned() ? s.cost_weight : predictions_->w_cost();
    const int a = predictions_->advice(s.features, s.input_tokens, s.pool, s.price_factor, w_cost);
    if (a >= 0) o[L.predictions + 2 * M + a] = 1.f;
  }
}

void ConductorObsWriter::write_history_slot(const ConductorStateView& s, int j, float* o) const {
  const ObsLayout& L = layout_;
  const int M = n_workers_;
  const ConductorStepView& v = s.steps[j];
  o[L.called + v.worker] = 1.f;
  float* h = o + L.history + j * L.history_slot;
  h[v.worker] = 1.f;
  h[M] = v.error != kOk ? 1.f : 0.f;
  h[M + 1] = output_length_obs(v.output_tokens);
  h[M + 2] = v.agreement;
  h[M + 3] = static_cast<float>(v.latency_s / latency_scale_);
}

void ConductorObsWriter::write_summary(const ConductorStateView& s, float* o) const {
  const ObsLayout& L = layout_;
  int best_votes = 0, comparable = 0;
  for (int j = 0; j < s.n_steps; ++j) {
    const ConductorStepView& u = s.steps[j];
    if (u.error != kOk || u.answer < 0) continue;
    ++comparable;
    int votes = 0;
    for (int l = 0; l < s.n_steps; ++l) votes += (s.steps[l].error == kOk && s.steps[l].answer == u.answer);
    best_votes = std::max(best_votes, votes);
  }
  o[L.summary + 0] = static_cast<float>(s.cum_cost_usd / cost_scale_);
  o[L.summary + 1] = static_cast<float>(s.cum_latency_s / latency_scale_);
  o[L.summary + 2] = static_cast<float>(s.n_steps) / max_steps_;
  o[L.summary + 3] = comparable ? static_cast<float>(best_votes) / comparable : 0.f;
}

void ConductorObsWriter::write_call(const ConductorStateView& s, float* o) const {
  CONDUCTOR_CHECK(s.n_steps >= 1 && s.n_steps <= max_steps_, "write_call after ", s.n_steps, " calls");
  write_history_slot(s, s.n_steps - 1, o);
  write_summary(s, o);
}

void ConductorObsWriter::write_mask(const ConductorStateView& s, double cap_usd, uint8_t* mask, float* o) const {
  const ObsLayout& L = layout_;
  float* om = o + L.mask;
  bool any_call = false;
  for (int k = 0; k < n_workers_; ++k) {
    bool ok = s.pool[k] && !s.called[k];
    if (cap_usd >= 0 && ok) ok = s.cum_cost_usd + expected_cost_[k] * s.price_factor[k] <= cap_usd;
    mask[k] = ok;
    om[k] = ok;
    any_call |= ok;
  }
  const uint8_t fin = (s.n_answers > 0 || !any_call) ? 1 : 0;
  for (int a = n_workers_; a < n_actions_; ++a) {
    mask[a] = fin;
    om[a] = fin;
  }
}

void ConductorObsWriter::write(const ConductorStateView& s, double cap_usd, float* o, uint8_t* mask) const {
  CONDUCTOR_CHECK(s.n_steps <= max_steps_, "state with ", s.n_steps, " calls for max_steps ", max_steps_);
  write_start(s, o);
  for (int j = 0; j < s.n_steps; ++j) write_history_slot(s, j, o);
  if (s.n_steps > 0) write_summary(s, o);
  write_mask(s, cap_usd, mask, o);
}

void ConductorObsWriter::write_finished(int steps_taken, float* o) const {
  o[layout_.summary + 2] = static_cast<float>(steps_taken) / max_steps_;
  std::fill(o + layout_.mask, o + layout_.mask + n_actions_, 0.f);
}

}  // namespace conductor
