#include "serve/conductor_world.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "envs/conductor_env.h"
#include "traces/tokens.h"
#include "traces/trace_set.h"

namespace conductor::serve {

json world_spec_from_env(const ConductorWorld& W, const ConductorEnvConfig& config) {
  const TraceSet& T = *W.traces;
  json workers = json::array();
  for (std::size_t k = 0; k < W.workers.size(); ++k) {
    const int m = W.workers[k];
    workers.push_back({{"name", W.worker_names[k]},
                       {"provider", T.model_provider.empty() ? "" : T.model_provider[m]},
                       {"price_in_per_mtok", T.price_in_per_mtok.empty() ? 0.0 : T.price_in_per_mtok[m]},
                       {"price_out_per_mtok", T.price_out_per_mtok.empty() ? 0.0 : T.price_out_per_mtok[m]},
                       {"expected_cost_usd", W.expected_cost[k]},
                       {"trust", W.trust[k]}});
  }
  json rules = json::array();
  for (FinishRule r : config.finish_rules) rules.push_back(finish_rule_name(r));
  json spec = {{"featurizer", W.featurizer.to_json()},
               {"workers", workers},
               {"cost_scale", W.cost_scale},
               {"latency_scale", W.latency_scale},
               {"max_steps", config.max_steps},
               {"finish_rules", rules},
               {"default_finish", finish_rule_name(config.default_finish)},
               {"budget_cap_usd", nullptr}};
  if (config.reward.budget.mode == BudgetMode::kCap) spec["budget_cap_usd"] = config.reward.budget.cap_usd;
  spec["cost_conditioning"] = nullptr;
  if (config.reward.cost_conditioned())
    spec["cost_conditioning"] = {{"w_cost_min", config.reward.w_cost_min},
                                 {"w_cost_max", config.reward.w_cost_max},
                                 {"w_cost_default", config.reward.w_cost}};
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

}  // namespace

std::shared_ptr<ConductorLiveWorld> ConductorLiveWorld::from_spec(const json& spec, const std::string& source) {
  auto w = std::make_shared<ConductorLiveWorld>();
  const std::string where = "world";
  try {
    w->featurizer_ = QueryFeaturizer::from_json(field(spec, "featurizer", source, where));
  } catch (const Error& e) {
    fail(source, ": world.featurizer: ", e.what());
  } catch (const json::exception& e) {
    fail(source, ": world.featurizer: ", e.what());
  }
  const json& workers = field(spec, "workers", source, where);
  if (!workers.is_array() || workers.empty()) fail(source, ": world.workers: expected a non-empty array");
  for (std::size_t k = 0; k < workers.size(); ++k) {
    const std::string at = "world.workers[" + std::to_string(k) + "]";
    const json& n = field(workers[k], "name", source, at);
    if (!n.is_string()) fail(source, ": ", at, ".name: expected a string");
    w->names_.push_back(n.get<std::string>());
    // null = no public list price (e.g. most RouterBench models): live call costs then fall back
    // to the worker's expected (mean training) cost per call.
    auto price = [&](const char* key) {
      const json& v = field(workers[k], key, source, at);
      if (v.is_null()) return std::nan("");
      if (!v.is_number() || v.get<double>() < 0)
        fail(source, ": ", at, ".", key, ": expected null (unknown) or a number >= 0, got ", v.dump());
      return v.get<double>();
    };
    w->price_in_.push_back(price("price_in_per_mtok"));
    w->price_out_.push_back(price("price_out_per_mtok"));
    w->expected_cost_.push_back(number(workers[k], "expected_cost_usd", source, at));
    w->trust_.push_back(number(workers[k], "trust", source, at));
  }
  w->cost_scale_ = number(spec, "cost_scale", source, where);
  w->latency_scale_ = number(spec, "latency_scale", source, where);
  if (!(w->cost_scale_ > 0) || !(w->latency_scale_ > 0)) fail(source, ": world.cost_scale and latency_scale must be > 0");
  const json& ms = field(spec, "max_steps", source, where);
  if (!ms.is_number_integer() || ms.get<int>() < 1) fail(source, ": world.max_steps: expected an integer >= 1");
  w->max_steps_ = ms.get<int>();
  const json& cap = field(spec, "budget_cap_usd", source, where);
  if (!cap.is_null()) {
    if (!cap.is_number() || cap.get<double>() < 0) fail(source, ": world.budget_cap_usd: expected null or a number >= 0");
    w->budget_cap_usd_ = cap.get<double>();
  }
  // Absent in exports written before cost conditioning existed: the same as null.
  if (spec.contains("cost_conditioning") && !spec["cost_conditioning"].is_null()) {
    const json& cc = spec["cost_conditioning"];
    const std::string at = "world.cost_conditioning";
    const double lo = number(cc, "w_cost_min", source, at), hi = number(cc, "w_cost_max", source, at),
                 def = number(cc, "w_cost_default", source, at);
    if (!(lo > 0 && hi > lo && def >= lo && def <= hi))
      fail(source, ": ", at, ": expected 0 < w_cost_min < w_cost_max and w_cost_default in between");
    w->reward_.w_cost_min = lo;
    w->reward_.w_cost_max = hi;
    w->reward_.w_cost = def;
  }
  w->M_ = static_cast<int>(w->names_.size());
  for (int k = 0; k < w->M_; ++k) {
    ActionInfo a;
    a.kind = ActionInfo::Kind::kCall;
    a.worker = k;
    a.name = "call:" + w->names_[k];
    w->actions_.push_back(a);
  }
  const json& rules = field(spec, "finish_rules", source, where);
  if (!rules.is_array() || rules.empty()) fail(source, ": world.finish_rules: expected a non-empty array");
  for (const auto& r : rules) {
    if (!r.is_string() || (r != "last" && r != "vote" && r != "most_trusted"))
      fail(source, ": world.finish_rules: unknown rule ", r.dump(), " (expected last, vote, most_trusted)");
    ActionInfo a;
    a.kind = ActionInfo::Kind::kFinish;
    a.finish_rule = r.get<std::string>();
    a.name = "finish:" + a.finish_rule;
    w->actions_.push_back(a);
  }
  const json& def = field(spec, "default_finish", source, where);
  if (!def.is_string() || std::find(rules.begin(), rules.end(), def) == rules.end())
    fail(source, ": world.default_finish: expected one of world.finish_rules, got ", def.dump());
  w->default_finish_ = def.get<std::string>();
  // ObsLayout, in ConductorEnv's order.
  int o = 0;
  w->features_ = o;
  o += w->featurizer_.dim();
  w->pool_ = o;
  o += w->M_;
  w->prices_ = o;
  o += w->M_;
  w->called_ = o;
  o += w->M_;
  w->history_ = o;
  w->slot_ = w->M_ + 4;
  o += w->max_steps_ * w->slot_;
  w->summary_ = o;
  o += 4;
  w->preference_ = o;
  o += w->reward_.cost_conditioned() ? 1 : 0;
  w->mask_ = o;
  o += static_cast<int>(w->actions_.size());
  w->dim_ = o;
  return w;
}

namespace {

struct StepView {
  int worker = -1;
  uint8_t error = 0;
  int32_t output_tokens = 0;
  int32_t answer = -1;
  float agreement = 0.f;
  float latency_s = 0.f;
  double cost_usd = 0.0;
};

}  // namespace

class ConductorLiveEpisode : public LiveEpisode {
 public:
  ConductorLiveEpisode(const ConductorLiveWorld& w, const LiveQuery& q) : w_(w) {
    features_.resize(static_cast<std::size_t>(w.featurizer_.dim()));
    const int tokens = q.input_tokens >= 0 ? q.input_tokens : estimate_tokens(q.text);
    w.featurizer_.featurize(q.text, q.task, tokens, features_.data());
    pool_ = q.available;
    if (pool_.size() != static_cast<std::size_t>(w.M_)) pool_.assign(w.M_, 1);
    called_.assign(w.M_, 0);
    cap_ = !std::isnan(q.budget_usd) ? q.budget_usd : w.budget_cap_usd_;
    if (w.reward_.cost_conditioned())
      preference_ = static_cast<float>(
          w.reward_.cost_preference(std::isnan(q.cost_weight) ? w.reward_.w_cost : q.cost_weight));
  }

  int steps() const override { return static_cast<int>(calls_.size()); }

  void record_call(const CallResult& r) override {
    CONDUCTOR_CHECK(r.worker >= 0 && r.worker < w_.M_, "record_call: worker ", r.worker);
    StepView v;
    v.worker = r.worker;
    v.error = r.error;
    v.output_tokens = std::max(0, r.output_tokens);
    v.answer = r.error == kOk ? r.answer_id : -1;
    v.latency_s = static_cast<float>(r.latency_s);
    v.cost_usd = r.cost_usd;
    int earlier = 0, same = 0;
    for (const auto& u : calls_) {
      if (u.error != kOk || u.answer < 0) continue;
      ++earlier;
      same += (u.answer == v.answer);
    }
    v.agreement = (v.error == kOk && v.answer >= 0 && earlier > 0) ? static_cast<float>(same) / earlier : 0.f;
    if (v.error == kOk) ++n_answers_;
    cum_cost_ += v.cost_usd;
    cum_latency_ += v.latency_s;
    called_[r.worker] = 1;
    calls_.push_back(v);
  }

  void observe(float* o, uint8_t* mask) const override {
    const ConductorLiveWorld& W = w_;
    const int M = W.M_;
    std::fill(o, o + W.dim_, 0.f);
    std::memcpy(o + W.features_, features_.data(), sizeof(float) * features_.size());
    const double inv_cost = 1.0 / W.cost_scale_;
    const float pf = 1.f;  // no price faults when serving
    for (int k = 0; k < M; ++k) {
      o[W.pool_ + k] = pool_[k];
      o[W.prices_ + k] = static_cast<float>(W.expected_cost_[k] * pf * inv_cost);
      o[W.called_ + k] = called_[k] ? 1.f : 0.f;
    }
    for (std::size_t j = 0; j < calls_.size() && static_cast<int>(j) < W.max_steps_; ++j) {
      const StepView& v = calls_[j];
      float* h = o + W.history_ + j * W.slot_;
      h[v.worker] = 1.f;
      h[M] = v.error != kOk ? 1.f : 0.f;
      h[M + 1] = static_cast<float>(std::log1p(static_cast<double>(v.output_tokens)) / 10.0);
      h[M + 2] = v.agreement;
      h[M + 3] = static_cast<float>(v.latency_s / W.latency_scale_);
    }
    if (!calls_.empty()) {
      int best_votes = 0, comparable = 0;
      for (const auto& u : calls_) {
        if (u.error != kOk || u.answer < 0) continue;
        ++comparable;
        int votes = 0;
        for (const auto& x : calls_) votes += (x.error == kOk && x.answer == u.answer);
        best_votes = std::max(best_votes, votes);
      }
      o[W.summary_ + 0] = static_cast<float>(cum_cost_ / W.cost_scale_);
      o[W.summary_ + 1] = static_cast<float>(cum_latency_ / W.latency_scale_);
      o[W.summary_ + 2] = static_cast<float>(static_cast<int>(calls_.size())) / W.max_steps_;
      o[W.summary_ + 3] = comparable ? static_cast<float>(best_votes) / comparable : 0.f;
    }
    if (W.reward_.cost_conditioned()) o[W.preference_] = preference_;
    bool any_call = false;
    for (int k = 0; k < M; ++k) {
      bool ok = pool_[k] && !called_[k];
      if (cap_ >= 0 && ok) ok = cum_cost_ + W.expected_cost_[k] * pf <= cap_;
      mask[k] = ok;
      o[W.mask_ + k] = ok;
      any_call |= ok;
    }
    const uint8_t fin = (n_answers_ > 0 || !any_call) ? 1 : 0;
    for (int r = M; r < W.n_actions(); ++r) {
      mask[r] = fin;
      o[W.mask_ + r] = fin;
    }
  }

 private:
  const ConductorLiveWorld& w_;
  std::vector<float> features_;
  std::vector<uint8_t> pool_, called_;
  std::vector<StepView> calls_;
  double cap_ = -1.0;
  float preference_ = 0.f;
  double cum_cost_ = 0.0, cum_latency_ = 0.0;
  int n_answers_ = 0;
};

std::unique_ptr<LiveEpisode> ConductorLiveWorld::start(const LiveQuery& query) const {
  return std::make_unique<ConductorLiveEpisode>(*this, query);
}

int ConductorLiveWorld::final_call(const std::string& rule, const std::vector<CallResult>& c) const {
  FinishRule r;
  if (!parse_finish_rule(rule, &r)) return LiveWorld::final_call(rule, c);
  return final_call_index(r, c.data(), static_cast<int>(c.size()), trust_,
                          [](const CallResult& x) { return x.answer_id; });
}

}  // namespace conductor::serve
