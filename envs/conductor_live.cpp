#include "envs/conductor_live.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "traces/tokens.h"
#include "traces/trace_set.h"

namespace conductor {

ConductorLiveWorld::ConductorLiveWorld(ConductorWorldSpec spec)
    : spec_(std::move(spec)), writer_(spec_), names_(spec_.worker_names()), trust_(spec_.trusts()) {
  for (int k = 0; k < spec_.n_workers(); ++k) {
    ActionInfo a;
    a.kind = ActionInfo::Kind::kCall;
    a.worker = k;
    a.name = "call:" + names_[k];
    actions_.push_back(a);
  }
  for (FinishRule r : spec_.finish_rules) {
    ActionInfo a;
    a.kind = ActionInfo::Kind::kFinish;
    a.finish_rule = finish_rule_name(r);
    a.name = "finish:" + a.finish_rule;
    actions_.push_back(a);
  }
}

std::shared_ptr<ConductorLiveWorld> ConductorLiveWorld::from_spec(const json& spec, const std::string& source) {
  return std::make_shared<ConductorLiveWorld>(ConductorWorldSpec::from_json(spec, source));
}

bool ConductorLiveWorld::cost_weight_range(double* lo, double* hi, double* default_weight) const {
  const RewardConfig& cc = spec_.cost_conditioning;
  if (!cc.cost_conditioned()) return false;
  *lo = cc.w_cost_min;
  *hi = cc.w_cost_max;
  *default_weight = cc.w_cost;
  return true;
}

namespace {

// The query's embedding when the features read one: the request's own, else the world's encoder's.
const float* embedding_of(const ConductorLiveWorld& w, const LiveQuery& q, std::vector<float>* computed) {
  const QueryFeaturizer& f = w.featurizer();
  if (!f.needs_embedding()) return nullptr;
  const EncoderRef& e = f.encoder();
  if (!q.embedding.empty()) {
    if (q.embedding.size() != static_cast<std::size_t>(e.dim))
      fail("live query: embedding has ", q.embedding.size(), " values, the features read ", e.dim, " (encoder ", e.name, ")");
    return q.embedding.data();
  }
  if (!w.embedder())
    fail("this world's features read the query's sentence embedding (encoder ", e.name, " at ", e.model,
         ", sha256 ", e.sha256, ") and no encoder is loaded to compute it");
  *computed = w.embedder()(q.text);
  if (computed->size() != static_cast<std::size_t>(e.dim))
    fail("encoder ", e.name, " returned ", computed->size(), " values, the features read ", e.dim);
  return computed->data();
}

class ConductorLiveEpisode : public LiveEpisode {
 public:
  ConductorLiveEpisode(const ConductorLiveWorld& w, const LiveQuery& q) : w_(w), text_(q.text), task_(q.task) {
    const ConductorWorldSpec& spec = w.spec();
    const int M = spec.n_workers();
    features_.resize(static_cast<std::size_t>(spec.featurizer.dim()));
    input_tokens_ = q.input_tokens >= 0 ? q.input_tokens : estimate_tokens(q.text);
    spec.featurizer.featurize(q.text, q.task, input_tokens_, features_.data(), embedding_of(w, q, &embedding_));
    pool_ = q.available;
    if (pool_.size() != static_cast<std::size_t>(M)) pool_.assign(M, 1);
    called_.assign(M, 0);
    // The request's current prices relative to the list prices of the manifest (route API
    // `price_factors`); list prices otherwise.
    if (q.price_factor.size() == static_cast<std::size_t>(M)) price_factor_.assign(q.price_factor.begin(), q.price_factor.end());
    else price_factor_.assign(M, 1.f);
    expected_cost_ = spec.expected_costs();
    steps_.reserve(static_cast<std::size_t>(spec.max_steps));
    cap_ = !std::isnan(q.budget_usd) ? q.budget_usd : spec.budget_cap_usd;
    cost_weight_ = std::isnan(q.cost_weight) ? spec.cost_conditioning.w_cost : q.cost_weight;
    obs_.assign(static_cast<std::size_t>(w.obs_dim()), 0.f);
    mask_.assign(static_cast<std::size_t>(w.n_actions()), 0);
    refresh();
  }

  int steps() const override { return static_cast<int>(steps_.size()); }

  void record_call(const CallResult& r) override {
    CONDUCTOR_CHECK(r.worker >= 0 && r.worker < w_.spec().n_workers(), "record_call: worker ", r.worker);
    CONDUCTOR_CHECK(static_cast<int>(steps_.size()) < w_.max_steps(), "record_call beyond max_steps");
    ConductorStepView v;
    v.worker = r.worker;
    v.error = r.error;
    v.output_tokens = std::max(0, r.output_tokens);
    v.answer = r.error == kOk ? r.answer_id : -1;
    v.latency_s = static_cast<float>(r.latency_s);
    v.cost_usd = r.cost_usd;
    v.agreement = answer_agreement(steps_.data(), static_cast<int>(steps_.size()), v);
    if (v.error == kOk) ++n_answers_;
    cum_cost_ += v.cost_usd;
    cum_latency_ += v.latency_s;
    called_[r.worker] = 1;
    steps_.push_back(v);
    refresh();
  }

  ObsBatch observation() const override {
    ObsBatch b;
    b.n = 1;
    b.n_actions = w_.n_actions();
    b.mask = mask_.data();
    b.dense = obs_.data();
    b.dense_dim = w_.obs_dim();
    b.states = &state_;
    return b;
  }

 private:
  void refresh() {
    ConductorStateView& s = state_;
    s.text = text_;
    s.task = task_;
    s.input_tokens = input_tokens_;
    s.features = features_.data();
    s.n_workers = w_.spec().n_workers();
    s.pool = pool_.data();
    s.called = called_.data();
    s.price_factor = price_factor_.data();
    s.expected_cost_usd = expected_cost_.data();
    s.steps = steps_.data();
    s.n_steps = static_cast<int>(steps_.size());
    s.n_answers = n_answers_;
    s.max_steps = w_.max_steps();
    s.cum_cost_usd = cum_cost_;
    s.cum_latency_s = cum_latency_;
    s.cost_weight = cost_weight_;
    s.action_mask = mask_.data();
    w_.writer().write(s, cap_, obs_.data(), mask_.data());
  }

  const ConductorLiveWorld& w_;
  std::string text_, task_;
  int input_tokens_ = -1;
  std::vector<float> embedding_, features_, price_factor_, obs_;
  std::vector<double> expected_cost_;
  std::vector<uint8_t> pool_, called_, mask_;
  std::vector<ConductorStepView> steps_;
  ConductorStateView state_;
  double cap_ = -1.0, cost_weight_ = 0.0;
  double cum_cost_ = 0.0, cum_latency_ = 0.0;
  int n_answers_ = 0;
};

}  // namespace

std::unique_ptr<LiveEpisode> ConductorLiveWorld::start(const LiveQuery& query) const {
  return std::make_unique<ConductorLiveEpisode>(*this, query);
}

int ConductorLiveWorld::final_call(const std::string& rule, const std::vector<CallResult>& c) const {
  FinishRule r;
  if (!parse_finish_rule(rule, &r)) return LiveWorld::final_call(rule, c);
  return final_call_index(r, c.data(), static_cast<int>(c.size()), trust_,
                          [](const CallResult& x) { return x.answer_id; });
}

}  // namespace conductor
