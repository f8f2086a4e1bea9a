#include "traces/info.h"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace conductor {
namespace {

// Running mean that skips NaN.
struct Mean {
  double sum = 0;
  std::size_t n = 0;
  void add(double v) {
    if (std::isnan(v)) return;
    sum += v;
    ++n;
  }
  double value() const { return n ? sum / static_cast<double>(n) : std::nan(""); }
};

json number_or_null(double v) { return std::isnan(v) ? json(nullptr) : json(v); }

std::string fmt(double v, const char* format) {
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

}  // namespace

TraceSummary summarize_traces(const TraceSet& t, std::optional<Split> split) {
  TraceSummary s;
  s.source = t.source;
  s.split = split;
  s.queries_total = t.n_queries();
  s.has_outcomes = t.has_outcomes();
  s.has_text = t.has_text();
  std::vector<bool> selected(t.n_queries(), false);
  for (std::size_t q = 0; q < t.n_queries(); ++q) {
    if (t.split[q] <= 2) ++s.per_split[t.split[q]];
    selected[q] = !split || t.split[q] == static_cast<uint8_t>(*split);
    if (!selected[q]) continue;
    ++s.queries;
    ++s.tasks[t.query_task[q]];
  }
  const std::size_t M = t.n_models();
  for (std::size_t m = 0; m < M; ++m) {
    ModelSummary ms;
    ms.name = t.model_name[m];
    ms.provider = t.model_provider[m];
    ms.price_in_per_mtok = t.price_in_per_mtok[m];
    ms.price_out_per_mtok = t.price_out_per_mtok[m];
    Mean quality, cost, latency;
    std::size_t calls_logged = 0, calls_failed = 0;
    if (s.has_outcomes) {
      for (std::size_t q = 0; q < t.n_queries(); ++q) {
        if (!selected[q]) continue;
        const std::size_t i = t.at(q, m);
        quality.add(t.quality[i]);
        cost.add(t.cost_usd[i]);
        latency.add(t.latency_s[i]);
        if (t.error[i] != kErrorMissing) {
          ++calls_logged;
          if (t.error[i] != kOk) ++calls_failed;
        }
      }
    }
    ms.quality = quality.value();
    ms.cost_usd = cost.value();
    ms.latency_s = latency.value();
    ms.logged = quality.n;
    ms.missing = s.queries ? 1.0 - static_cast<double>(quality.n) / static_cast<double>(s.queries) : std::nan("");
    ms.error_rate = calls_logged ? static_cast<double>(calls_failed) / static_cast<double>(calls_logged) : std::nan("");
    s.per_model.push_back(ms);
  }
  const Decisions& d = t.decisions;
  s.decisions_total = d.size();
  std::vector<Mean> dq(M);
  for (std::size_t k = 0; k < d.size(); ++k) {
    const auto q = static_cast<std::size_t>(d.query[k]);
    if (q >= selected.size() || !selected[q]) continue;
    ++s.decisions;
    const auto a = static_cast<std::size_t>(d.action[k]);
    if (a >= M) continue;
    ++s.per_model[a].decisions;
    dq[a].add(d.quality[k]);
  }
  for (std::size_t m = 0; m < M; ++m) s.per_model[m].decision_quality = dq[m].value();
  return s;
}

json summary_to_json(const TraceSummary& s) {
  json j;
  j["queries"] = s.queries;
  json models = json::array();
  for (const auto& m : s.per_model) models.push_back(m.name);
  j["models"] = models;
  json per = json::object();
  for (const auto& m : s.per_model) {
    per[m.name] = {
        {"quality", number_or_null(m.quality)},
        {"cost_usd", number_or_null(m.cost_usd)},
        {"latency_s", number_or_null(m.latency_s)},
        {"missing", number_or_null(m.missing)},
        {"error_rate", number_or_null(m.error_rate)},
        {"logged", m.logged},
        {"provider", m.provider},
        {"price_in_per_mtok", number_or_null(m.price_in_per_mtok)},
        {"price_out_per_mtok", number_or_null(m.price_out_per_mtok)},
        {"decisions", m.decisions},
        {"decision_quality", number_or_null(m.decision_quality)},
    };
  }
  j["per_model"] = per;
  j["split"] = s.split ? json(split_name(*s.split)) : json(nullptr);
  j["queries_total"] = s.queries_total;
  j["splits"] = {{"train", s.per_split[0]}, {"validation", s.per_split[1]}, {"test", s.per_split[2]}};
  j["decisions"] = s.decisions;
  j["decisions_total"] = s.decisions_total;
  j["tasks"] = s.tasks;
  j["source"] = s.source;
  j["has_outcomes"] = s.has_outcomes;
  j["has_text"] = s.has_text;
  return j;
}

std::string summary_table(const TraceSummary& s) {
  std::ostringstream os;
  os << "source:    " << s.source << "\n";
  os << "queries:   " << s.queries_total << " (train " << s.per_split[0] << ", validation " << s.per_split[1]
     << ", test " << s.per_split[2] << ")\n";
  os << "selected:  " << (s.split ? split_name(*s.split) : "all splits") << ", " << s.queries << " queries, "
     << s.decisions << " decisions (of " << s.decisions_total << ")\n";
  os << "models:    " << s.per_model.size() << (s.has_outcomes ? "" : " (no full-information outcomes)") << "\n";
  os << "tasks:    ";
  for (const auto& [task, n] : s.tasks) os << " " << task << " " << n;
  os << "\n\n";
  std::size_t w = 5;
  for (const auto& m : s.per_model) w = std::max(w, m.name.size());
  char line[512];
  std::snprintf(line, sizeof(line), "%-*s  %-12s  %8s  %11s  %9s  %8s  %7s  %9s\n", static_cast<int>(w), "model",
                "provider", "quality", "cost_usd", "latency_s", "missing", "errors", "decisions");
  os << line;
  for (const auto& m : s.per_model) {
    std::snprintf(line, sizeof(line), "%-*s  %-12s  %8s  %11s  %9s  %8s  %7s  %9zu\n", static_cast<int>(w),
                  m.name.c_str(), m.provider.c_str(), fmt(m.quality, "%.4f").c_str(), fmt(m.cost_usd, "%.6f").c_str(),
                  fmt(m.latency_s, "%.3f").c_str(), fmt(m.missing * 100.0, "%.1f%%").c_str(),
                  fmt(m.error_rate * 100.0, "%.1f%%").c_str(), m.decisions);
    os << line;
  }
  os << "\nmeans ignore missing values; '-' = nothing logged; missing = share of queries without a quality\n";
  return os.str();
}

}  // namespace conductor
