#include "traces/trace_set.h"

#include <sstream>
#include <unordered_map>

#include "core/error.h"

namespace conductor {

Split parse_split(const std::string& s) {
  if (s == "train") return Split::kTrain;
  if (s == "validation" || s == "val" || s == "valid") return Split::kValidation;
  if (s == "test") return Split::kTest;
  fail("unknown split '", s, "': expected train, validation or test");
}

const char* split_name(Split s) {
  switch (s) {
    case Split::kTrain: return "train";
    case Split::kValidation: return "validation";
    case Split::kTest: return "test";
  }
  return "?";
}

void TraceSet::allocate_outcomes() {
  const std::size_t nm = n_queries() * n_models();
  quality.assign(nm, kMissingF);
  cost_usd.assign(nm, kMissingD);
  latency_s.assign(nm, kMissingF);
  output_tokens.assign(nm, kMissingI);
  answer.assign(nm, kMissingI);
  error.assign(nm, kErrorMissing);
}

int TraceSet::model_index(const std::string& name) const {
  for (std::size_t i = 0; i < model_name.size(); ++i)
    if (model_name[i] == name) return static_cast<int>(i);
  return -1;
}

std::vector<std::size_t> TraceSet::split_indices(Split s) const {
  std::vector<std::size_t> out;
  for (std::size_t q = 0; q < split.size(); ++q)
    if (split[q] == static_cast<uint8_t>(s)) out.push_back(q);
  return out;
}

namespace {
struct Validator {
  std::string where;
  template <class... A>
  [[noreturn]] void bad(const A&... a) const {
    fail(where.empty() ? "" : where + ": ", a...);
  }
  void size(const char* name, std::size_t got, std::size_t want, const char* shape) const {
    if (got != want) bad(name, ": has ", got, " elements, expected ", want, " (", shape, ")");
  }
};

std::string cell(std::size_t i, std::size_t m) {
  if (m == 0) return "[" + std::to_string(i) + "]";
  return "[" + std::to_string(i / m) + "," + std::to_string(i % m) + "]";
}
}  // namespace

void TraceSet::validate(const std::string& where) const {
  Validator v{where};
  const std::size_t M = n_models(), N = n_queries();
  if (M == 0) v.bad("/models/name: no models");
  v.size("/models/provider", model_provider.size(), M, "[M]");
  v.size("/models/price_in_per_mtok", price_in_per_mtok.size(), M, "[M]");
  v.size("/models/price_out_per_mtok", price_out_per_mtok.size(), M, "[M]");
  for (std::size_t m = 0; m < M; ++m) {
    if (model_name[m].empty()) v.bad("/models/name[", m, "]: empty model name");
    for (std::size_t k = 0; k < m; ++k)
      if (model_name[k] == model_name[m]) v.bad("/models/name[", m, "]: duplicate model '", model_name[m], "'");
    // NaN = price unknown; otherwise it must be a non-negative number.
    if (price_in_per_mtok[m] < 0 || std::isinf(price_in_per_mtok[m]))
      v.bad("/models/price_in_per_mtok[", m, "]: value ", price_in_per_mtok[m], " is not a non-negative price");
    if (price_out_per_mtok[m] < 0 || std::isinf(price_out_per_mtok[m]))
      v.bad("/models/price_out_per_mtok[", m, "]: value ", price_out_per_mtok[m], " is not a non-negative price");
  }
  v.size("/queries/task", query_task.size(), N, "[N]");
  if (!query_text.empty()) v.size("/queries/text", query_text.size(), N, "[N]");
  v.size("/queries/input_tokens", input_tokens.size(), N, "[N]");
  if (embedding_dim < 0) v.bad("/queries/embedding: dimension ", embedding_dim, " (expected > 0, or 0 for none)");
  if (embedding_dim > 0) {
    v.size("/queries/embedding", query_embedding.size(), N * static_cast<std::size_t>(embedding_dim), "[N x dim]");
    for (std::size_t i = 0; i < query_embedding.size(); ++i)
      if (!std::isfinite(query_embedding[i]))
        v.bad("/queries/embedding", cell(i, static_cast<std::size_t>(embedding_dim)), ": value ", query_embedding[i],
              " is not finite (every query has an embedding)");
    if (embedding_sha256.size() != 64 ||
        embedding_sha256.find_first_not_of("0123456789abcdef") != std::string::npos)
      v.bad("/queries/embedding: attribute sha256 '", embedding_sha256, "' is not 64 lowercase hex digits");
    if (embedding_model.empty()) v.bad("/queries/embedding: attribute model is empty (the encoder's name)");
  } else if (!query_embedding.empty()) {
    v.bad("/queries/embedding: ", query_embedding.size(), " values but dimension 0");
  }
  v.size("/queries/split", split.size(), N, "[N]");
  for (std::size_t q = 0; q < N; ++q) {
    if (split[q] > 2) v.bad("/queries/split[", q, "]: value ", int(split[q]), " not in {0 train, 1 validation, 2 test}");
    if (input_tokens[q] < -1) v.bad("/queries/input_tokens[", q, "]: value ", input_tokens[q], " (expected >= 0, or -1 for missing)");
  }

  const bool outcomes = !quality.empty() || !cost_usd.empty() || !latency_s.empty() ||
                        !output_tokens.empty() || !answer.empty() || !error.empty();
  if (outcomes) {
    const std::size_t NM = N * M;
    v.size("/outcomes/quality", quality.size(), NM, "[N x M]");
    v.size("/outcomes/cost_usd", cost_usd.size(), NM, "[N x M]");
    v.size("/outcomes/latency_s", latency_s.size(), NM, "[N x M]");
    v.size("/outcomes/output_tokens", output_tokens.size(), NM, "[N x M]");
    v.size("/outcomes/answer", answer.size(), NM, "[N x M]");
    v.size("/outcomes/error", error.size(), NM, "[N x M]");
    for (std::size_t i = 0; i < NM; ++i) {
      const float qv = quality[i];
      if (!std::isnan(qv) && !(qv >= 0.0f && qv <= 1.0f))
        v.bad("/outcomes/quality", cell(i, M), ": value ", qv, " outside [0, 1] (NaN = missing)");
      const double c = cost_usd[i];
      if (!std::isnan(c) && !(c >= 0.0 && std::isfinite(c)))
        v.bad("/outcomes/cost_usd", cell(i, M), ": value ", c, " is not a non-negative cost (NaN = missing)");
      const float l = latency_s[i];
      if (!std::isnan(l) && !(l >= 0.0f && std::isfinite(l)))
        v.bad("/outcomes/latency_s", cell(i, M), ": value ", l, " is not a non-negative duration (NaN = missing)");
      if (output_tokens[i] < -1)
        v.bad("/outcomes/output_tokens", cell(i, M), ": value ", output_tokens[i], " (expected >= 0, or -1 for missing)");
      if (answer[i] < -1)
        v.bad("/outcomes/answer", cell(i, M), ": value ", answer[i], " (expected a class id >= 0, or -1)");
      if (error[i] > kServerError && error[i] != kErrorMissing)
        v.bad("/outcomes/error", cell(i, M), ": value ", int(error[i]),
              " not in {0 ok, 1 timeout, 2 rate limited, 3 server error, 255 missing}");
    }
  }

  const Decisions& d = decisions;
  const std::size_t K = d.action.size();
  if (K > 0 || !d.query.empty()) {
    v.size("/decisions/query", d.query.size(), K, "[K]");
    v.size("/decisions/propensity", d.propensity.size(), K, "[K]");
    v.size("/decisions/quality", d.quality.size(), K, "[K]");
    v.size("/decisions/cost_usd", d.cost_usd.size(), K, "[K]");
    v.size("/decisions/latency_s", d.latency_s.size(), K, "[K]");
    v.size("/decisions/timestamp_ms", d.timestamp_ms.size(), K, "[K]");
    v.size("/decisions/available", d.available.size(), K * M, "[K x M]");
    v.size("/decisions/policy", d.policy.size(), K, "[K]");
    for (std::size_t k = 0; k < K; ++k) {
      if (d.query[k] < 0 || static_cast<std::size_t>(d.query[k]) >= N)
        v.bad("/decisions/query[", k, "]: value ", d.query[k], " is not a query index in [0, ", N, ")");
      if (d.action[k] < 0 || static_cast<std::size_t>(d.action[k]) >= M)
        v.bad("/decisions/action[", k, "]: value ", d.action[k], " is not a model index in [0, ", M, ")");
      const double p = d.propensity[k];
      if (std::isnan(p)) v.bad("/decisions/propensity[", k, "]: missing (NaN); off-policy estimators need it");
      if (!(p > 0.0 && p <= 1.0)) v.bad("/decisions/propensity[", k, "]: value ", p, " outside (0, 1]");
      const float qv = d.quality[k];
      if (!std::isnan(qv) && !(qv >= 0.0f && qv <= 1.0f))
        v.bad("/decisions/quality[", k, "]: value ", qv, " outside [0, 1]");
      if (!std::isnan(d.cost_usd[k]) && !(d.cost_usd[k] >= 0.0 && std::isfinite(d.cost_usd[k])))
        v.bad("/decisions/cost_usd[", k, "]: value ", d.cost_usd[k], " is not a non-negative cost");
      if (!std::isnan(d.latency_s[k]) && !(d.latency_s[k] >= 0.0f && std::isfinite(d.latency_s[k])))
        v.bad("/decisions/latency_s[", k, "]: value ", d.latency_s[k], " is not a non-negative duration");
      for (std::size_t m = 0; m < M; ++m)
        if (d.available[k * M + m] > 1) v.bad("/decisions/available[", k, ",", m, "]: value ", int(d.available[k * M + m]), " not 0 or 1");
      if (!d.available[k * M + d.action[k]])
        v.bad("/decisions/available[", k, ",", d.action[k], "]: the chosen action ", d.action[k], " is marked unavailable");
    }
  }
  if (!outcomes && K == 0 && N > 0) v.bad("/outcomes: the file has neither /outcomes nor /decisions");
}

namespace {
// A query's text for an error message: quoted, cut to 60 bytes.
std::string quoted_excerpt(const std::string& text) {
  return "\"" + (text.size() > 60 ? text.substr(0, 60) + "..." : text) + "\"";
}
}  // namespace

std::vector<std::size_t> match_logged_queries(const TraceSet& logs, const std::string& logs_name,
                                              const TraceSet& traces, const std::string& traces_name,
                                              const std::string& why_needed) {
  std::unordered_map<std::string, std::size_t> by_id;
  for (std::size_t q = 0; q < traces.n_queries(); ++q) by_id.emplace(traces.query_id[q], q);
  const Decisions& d = logs.decisions;
  const bool texts = logs.has_text() && traces.has_text();
  std::vector<std::size_t> out(d.size());
  for (std::size_t i = 0; i < d.size(); ++i) {
    const auto lq = static_cast<std::size_t>(d.query[i]);
    const std::string& id = logs.query_id[lq];
    const auto it = by_id.find(id);
    if (it == by_id.end())
      fail(logs_name, ": /decisions/query[", i, "] is query '", id, "', which ", traces_name, " does not have: ",
           why_needed);
    const std::size_t tq = it->second;
    const std::string& lt = logs.query_task[lq];
    const std::string& tt = traces.query_task[tq];
    if (!lt.empty() && !tt.empty() && lt != tt)
      fail(logs_name, ": /decisions/query[", i, "] is query '", id, "' of task '", lt, "', but ", traces_name,
           "'s query '", id, "' is of task '", tt, "': the logs were recorded on other queries than these traces "
           "(same ids, another world); give the trace file the logs were made from");
    if (texts && logs.query_text[lq] != traces.query_text[tq])
      fail(logs_name, ": /decisions/query[", i, "] is query '", id, "' with text ", quoted_excerpt(logs.query_text[lq]),
           ", but ", traces_name, "'s query '", id, "' has text ", quoted_excerpt(traces.query_text[tq]),
           ": the logs were recorded on other queries than these traces (same ids, another world); give the trace "
           "file the logs were made from");
    out[i] = tq;
  }
  return out;
}

}  // namespace conductor
