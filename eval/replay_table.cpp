#include "eval/outcome_table.h"

#include <cmath>

#include "core/error.h"

namespace conductor::eval {

std::vector<double> OutcomeTable::mean_quality() const {
  std::vector<double> out(n_workers(), 0.0);
  for (std::size_t r = 0; r < n_queries(); ++r)
    for (std::size_t m = 0; m < n_workers(); ++m) out[m] += quality[at(r, m)];
  for (auto& v : out) v /= static_cast<double>(n_queries());
  return out;
}

std::vector<double> OutcomeTable::mean_cost() const {
  std::vector<double> out(n_workers(), 0.0);
  for (std::size_t r = 0; r < n_queries(); ++r)
    for (std::size_t m = 0; m < n_workers(); ++m) out[m] += cost_usd[at(r, m)];
  for (auto& v : out) v /= static_cast<double>(n_queries());
  return out;
}

OutcomeTable OutcomeTable::build(const TraceSet& traces, Split split, const LatencyFill& fill) {
  if (!traces.has_outcomes())
    fail("traces (", traces.source, ") have no /outcomes: full-information replay needs every worker's "
         "outcome on every query (bandit logs in /decisions are evaluated with `conductor ope`)");
  const auto rows = traces.split_indices(split);
  if (rows.empty())
    fail("split '", split_name(split), "' has no queries in the traces (", traces.source, ")");
  OutcomeTable t;
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
      const uint8_t err = traces.error.empty() ? kErrorMissing : traces.error[k];
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

}  // namespace conductor::eval
