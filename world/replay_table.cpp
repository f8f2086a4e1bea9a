#include "world/replay_table.h"

#include <cmath>

#include "core/error.h"
#include "world/outcome_model.h"

namespace conductor::eval {

std::vector<double> ReplayTable::mean_quality() const {
  std::vector<double> out(n_workers(), 0.0);
  for (std::size_t r = 0; r < n_queries(); ++r)
    for (std::size_t m = 0; m < n_workers(); ++m) out[m] += quality[at(r, m)];
  for (auto& v : out) v /= static_cast<double>(n_queries());
  return out;
}

std::vector<double> ReplayTable::mean_cost() const {
  std::vector<double> out(n_workers(), 0.0);
  for (std::size_t r = 0; r < n_queries(); ++r)
    for (std::size_t m = 0; m < n_workers(); ++m) out[m] += cost_usd[at(r, m)];
  for (auto& v : out) v /= static_cast<double>(n_queries());
  return out;
}

ReplayTable ReplayTable::build(const TraceSet& traces, Split split, const LatencyFill& fill) {
  if (!traces.has_outcomes())
    fail("traces (", traces.source, ") have no /outcomes: full-information replay needs every worker's "
         "outcome on every query (bandit logs in /decisions are evaluated with `conductor ope`)");
  const auto rows = traces.split_indices(split);
  if (rows.empty())
    fail("split '", split_name(split), "' has no queries in the traces (", traces.source, ")");
  ReplayTable t;
  t.split = split;
  t.workers = traces.model_name;
  const std::size_t M = traces.n_models();
  for (std::size_t q : rows) {
    bool complete = true;
    for (std::size_t m = 0; m < M && complete; ++m) {
      const std::size_t k = traces.at(q, m);
      complete = std::isfinite(traces.quality[k]) && std::isfinite(traces.cost_usd[k]);
    }
    if (!complete) {
      ++t.dropped_queries;
      continue;
    }
    t.query_index.push_back(q);
    for (std::size_t m = 0; m < M; ++m) {
      const std::size_t k = traces.at(q, m);
      const uint8_t err = traces.error.empty() ? static_cast<uint8_t>(kErrorMissing) : traces.error[k];
      const bool failed = err != kOk && err != kErrorMissing;
      t.quality.push_back(failed ? 0.0 : static_cast<double>(traces.quality[k]));
      t.cost_usd.push_back(traces.cost_usd[k]);
      double lat = traces.latency_s.empty() ? std::nan("") : static_cast<double>(traces.latency_s[k]);
      if (!std::isfinite(lat)) {
        if (!fill)
          fail("/outcomes/latency_s[", q, ",", m, "] is not logged and no latency model was given to fill it");
        lat = fill(q, m);
        ++t.filled_latencies;
      }
      t.latency_s.push_back(lat);
      t.answer.push_back(failed || traces.answer.empty() ? -1 : traces.answer[k]);
      t.failed.push_back(failed ? 1 : 0);
    }
  }
  if (t.query_index.empty())
    fail("split '", split_name(split), "' has ", rows.size(),
         " queries but none with quality and cost logged for every worker: full-information replay "
         "needs complete rows");
  return t;
}

ReplayTable ReplayTable::from_outcomes(const TraceSet& traces, const OutcomeTable& outcomes,
                                       const std::vector<int>& workers, Split split) {
  CONDUCTOR_CHECK(outcomes.n_queries == traces.n_queries() && outcomes.n_models == traces.n_models());
  const auto rows = traces.split_indices(split);
  if (rows.empty())
    fail("split '", split_name(split), "' has no queries in the traces (", traces.source, ")");
  if (workers.empty()) fail("full-information replay needs at least one worker");
  ReplayTable t;
  t.split = split;
  for (int m : workers) {
    CONDUCTOR_CHECK(m >= 0 && static_cast<std::size_t>(m) < traces.n_models(), "worker ", m);
    t.workers.push_back(traces.model_name[m]);
  }
  for (std::size_t q : rows) {
    bool complete = true;
    for (int m : workers) {
      const std::size_t k = outcomes.at(q, m);
      complete = complete && outcomes.available[k] && !outcomes.predicted[k] &&
                 std::isfinite(outcomes.quality[k]) && std::isfinite(outcomes.cost_usd[k]) &&
                 std::isfinite(outcomes.latency_s[k]);
    }
    if (!complete) {
      ++t.dropped_queries;
      continue;
    }
    t.query_index.push_back(q);
    for (int m : workers) {
      const std::size_t k = outcomes.at(q, m);
      const bool failed = outcomes.error[k] != kOk && outcomes.error[k] != kErrorMissing;
      t.quality.push_back(failed ? 0.0 : static_cast<double>(outcomes.quality[k]));
      t.cost_usd.push_back(outcomes.cost_usd[k]);
      t.latency_s.push_back(outcomes.latency_s[k]);
      if (traces.latency_s.empty() || !std::isfinite(traces.latency_s[traces.at(q, m)])) ++t.filled_latencies;
      t.answer.push_back(failed ? -1 : outcomes.answer[k]);
      t.failed.push_back(failed ? 1 : 0);
    }
  }
  if (t.query_index.empty())
    fail("split '", split_name(split), "' has ", rows.size(),
         " queries but none with an outcome logged for every worker: full-information replay needs "
         "complete rows");
  return t;
}

}  // namespace conductor::eval
