// Summary of a trace set (`conductor traces info`): counts and per-model means, as a pure function.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/json_util.h"
#include "traces/trace_set.h"

namespace conductor {

struct ModelSummary {
  std::string name, provider;
  double price_in_per_mtok = 0, price_out_per_mtok = 0;  // NaN = unknown
  // Over the selected queries; means ignore missing values and are NaN when every value is missing.
  double quality = 0;     // mean /outcomes/quality
  double cost_usd = 0;    // mean /outcomes/cost_usd per call
  double latency_s = 0;   // mean /outcomes/latency_s
  double missing = 0;     // share of selected queries whose quality is missing (1 without outcomes)
  double error_rate = 0;  // share of logged calls (error != missing) with error != ok; NaN if none logged
  std::size_t logged = 0;            // selected queries with a non-missing quality
  std::size_t decisions = 0;         // selected decisions that chose this model
  double decision_quality = 0;       // mean observed quality of those decisions (NaN if none)
};

struct TraceSummary {
  std::string source;
  std::optional<Split> split;          // the selection; nullopt = all queries
  std::size_t queries = 0;             // queries in the selection
  std::size_t queries_total = 0;       // queries in the file
  std::size_t per_split[3] = {0, 0, 0};  // queries per split (whole file)
  std::size_t decisions = 0;           // decisions on selected queries
  std::size_t decisions_total = 0;
  bool has_outcomes = false, has_text = false;
  std::map<std::string, std::size_t> tasks;  // selected queries per task
  std::vector<ModelSummary> per_model;       // in file order
};

// Summarizes `traces` over the queries of `split` (all queries when nullopt).
TraceSummary summarize_traces(const TraceSet& traces, std::optional<Split> split);

// One JSON object: {"queries": N, "models": [...], "per_model": {"<name>": {"quality": q,
// "cost_usd": c, "latency_s": l, "missing": f, ...}}, "split": ..., "splits": {...}, ...};
// NaN becomes null.
json summary_to_json(const TraceSummary& s);

// A readable report with an aligned per-model table.
std::string summary_table(const TraceSummary& s);

}  // namespace conductor
