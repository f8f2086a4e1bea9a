// The full-information outcome table of one split: every worker's logged outcome on every query.
//
// Full-information replay is exact only where the trace logged the outcome, so a query enters the
// table only when quality and cost are logged for every worker; the others are counted in
// `dropped_queries` (and reported), never filled with 0. Latency is replayed where logged; where a
// trace has no latency at all (RouterBench logs none) the caller supplies a deterministic fill, e.g.
// the fitted latency model's mean, and the table records that it did.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "traces/trace_set.h"

namespace conductor {
struct OutcomeTable;  // world/outcome_model.h: the environment's dense outcome table
}

namespace conductor::eval {

// The outcome of one query under one policy.
struct QueryResult {
  double quality = 0.0;      // quality of the final answer, in [0, 1]
  double cost_usd = 0.0;     // total over every call
  double latency_s = 0.0;    // end-to-end (calls are sequential)
  std::vector<int> calls;    // worker indices called, in order
};

// (trace query index, worker index) -> latency in seconds, for cells whose latency is not logged.
using LatencyFill = std::function<double(std::size_t query, std::size_t worker)>;

struct ReplayTable {
  Split split = Split::kTest;
  std::vector<std::string> workers;
  std::vector<std::size_t> query_index;  // trace row of each table row
  std::size_t dropped_queries = 0;       // split queries without a complete row
  std::size_t filled_latencies = 0;      // cells whose latency came from the fill

  // Row-major [n_queries x n_workers].
  std::vector<double> quality;
  std::vector<double> cost_usd;
  std::vector<double> latency_s;
  std::vector<int32_t> answer;   // -1 = not comparable
  std::vector<uint8_t> failed;   // 1 = the call returned an error (timeout, rate limit, server)

  std::size_t n_queries() const { return query_index.size(); }
  std::size_t n_workers() const { return workers.size(); }
  std::size_t at(std::size_t row, std::size_t m) const { return row * workers.size() + m; }

  // Mean quality / cost of each worker over the table (a failed call has quality 0).
  std::vector<double> mean_quality() const;
  std::vector<double> mean_cost() const;

  // Builds the table of `split`. Throws conductor::Error naming the split when no query has a
  // complete row (or the split is empty), and when latency is missing and `fill` is empty.
  static ReplayTable build(const TraceSet& traces, Split split, const LatencyFill& fill = nullptr);
  // The same from the outcome table a ConductorEnv replays (so latencies filled by the world's
  // latency model are exactly the environment's), restricted to the trace models `workers` (in
  // that order). Only replayed cells count as logged: a predicted cell makes the row incomplete.
  static ReplayTable from_outcomes(const TraceSet& traces, const OutcomeTable& outcomes,
                                   const std::vector<int>& workers, Split split);
};

}  // namespace conductor::eval
