#include "serve/decision_rows.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "artifacts/sha256.h"
#include "traces/trace_set.h"

namespace conductor::serve {

int64_t unix_time_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {
const char* error_name(uint8_t e) {
  switch (e) {
    case kOk: return "ok";
    case kTimeout: return "timeout";
    case kRateLimited: return "rate_limited";
    default: return "server_error";
  }
}
json num_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
}  // namespace

DecisionRecorder::DecisionRecorder(std::shared_ptr<const Router> router, ExplorationConfig exploration,
                                   std::shared_ptr<DecisionLog> log, std::shared_ptr<RequestIndex> index)
    : router_(std::move(router)), exploration_(exploration), log_(std::move(log)), index_(std::move(index)) {
  std::random_device rd;
  id_key_ = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^
            static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  if (exploration_.seed == 0) exploration_.seed = splitmix64(id_key_ ^ 0xE7);
}

std::string DecisionRecorder::new_request_id(uint64_t* sequence) {
  const uint64_t n = next_.fetch_add(1, std::memory_order_relaxed);
  if (sequence) *sequence = n;
  // splitmix64 is a bijection of 64-bit words: distinct sequence numbers give distinct ids.
  char buf[24];
  std::snprintf(buf, sizeof buf, "req_%016llx", static_cast<unsigned long long>(splitmix64(id_key_ + n)));
  return buf;
}

Rng DecisionRecorder::request_rng(uint64_t sequence) const { return Rng(derive_seed(exploration_.seed, sequence)); }

std::string DecisionRecorder::query_id(const std::string& given, const std::string& text) const {
  if (!given.empty()) return given;
  return "sha256:" + sha256_hex(text).substr(0, 16);
}

json DecisionRecorder::row(const LoggedDecision& d) const {
  const LiveWorld& world = router_->world();
  const auto& actions = world.actions();
  const auto& workers = world.workers();
  json j;
  j["type"] = "decision";
  j["request_id"] = d.request_id;
  j["endpoint"] = d.endpoint;
  if (!d.key_id.empty()) j["key_id"] = d.key_id;
  j["timestamp_ms"] = d.timestamp_ms;
  j["query_id"] = d.query_id;
  if (!log_ || log_->config().log_query_text) j["text"] = d.query.text;
  if (!d.query.task.empty()) j["task"] = d.query.task;
  j["input_tokens"] = d.query.input_tokens;
  json avail = json::array();
  for (std::size_t w = 0; w < workers.size(); ++w)
    if (d.query.available.empty() || d.query.available[w]) avail.push_back(workers[w]);
  j["available"] = avail;
  if (std::isfinite(d.query.budget_usd)) j["budget_usd"] = d.query.budget_usd;
  if (std::isfinite(d.query.cost_weight)) j["cost_weight"] = d.query.cost_weight;
  if (!d.query.price_factor.empty()) {
    json pf = json::object();
    for (std::size_t w = 0; w < workers.size() && w < d.query.price_factor.size(); ++w)
      if (d.query.price_factor[w] != 1.0) pf[workers[w]] = d.query.price_factor[w];
    if (!pf.empty()) j["price_factors"] = pf;
  }
  j["policy"] = router_->model_version();
  j["exploration"] = exploration_.id();
  j["max_steps"] = world.max_steps();
  // The single-step view (the first call and its propensity) every bandit estimator reads.
  for (const auto& s : d.steps)
    if (!s.fallback && actions[s.action].kind == ActionInfo::Kind::kCall) {
      j["chosen"] = workers[actions[s.action].worker];
      j["propensity"] = s.propensity;
      break;
    }
  double cost = 0, latency = 0;
  bool any_result = false;
  json steps = json::array();
  for (const auto& s : d.steps) {
    json st;
    st["action"] = actions[s.action].name;
    if (s.fallback) st["fallback"] = true;
    else st["propensity"] = s.propensity;
    if (s.has_result) {
      const CallResult& r = s.result;
      st["error"] = error_name(r.error);
      if (!s.failure.empty()) st["failure"] = s.failure;
      st["output_tokens"] = r.output_tokens;
      st["answer"] = r.answer_id;
      st["cost_usd"] = num_or_null(r.cost_usd);
      st["latency_s"] = num_or_null(r.latency_s);
      cost += r.cost_usd;
      latency += r.latency_s;
      any_result = true;
    }
    steps.push_back(std::move(st));
  }
  j["steps"] = steps;
  if (any_result) {
    j["cost_usd"] = cost;
    j["latency_s"] = latency;
    j["answered_by"] = d.answered_by >= 0 ? json(workers[d.answered_by]) : json(nullptr);
  }
  j["status"] = d.status;
  return j;
}

bool DecisionRecorder::record(const LoggedDecision& d) {
  if (!log_) return false;
  if (!log_->append(row(d).dump())) return false;
  if (index_) index_->add(d.request_id);
  return true;
}

bool DecisionRecorder::record_feedback(const std::string& request_id, double quality, const std::string& source) {
  if (!log_) return false;
  json j = {{"type", "feedback"}, {"request_id", request_id}, {"quality", quality}, {"timestamp_ms", unix_time_ms()}};
  if (!source.empty()) j["source"] = source;
  return log_->append(j.dump());
}

}  // namespace conductor::serve
