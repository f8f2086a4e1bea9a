// report.md and frontier.svg from report.json (eval/evaluate.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "eval/evaluate.h"

namespace conductor::eval {

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}
std::string fnum(const json& v, const char* f) { return v.is_null() ? "-" : fmt(f, v.get<double>()); }
std::string pct(const json& v) { return v.is_null() ? "-" : fmt("%.1f%%", 100.0 * v.get<double>()); }

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

// Policy rows in a stable, meaningful order: conductors, then baselines, then single workers.
std::vector<std::string> ordered_policies(const json& policies) {
  std::vector<std::string> out;
  for (auto it = policies.begin(); it != policies.end(); ++it)
    if (it.key().rfind("conductor", 0) == 0) out.push_back(it.key());
  // The headline conductor first, then the frontier's checkpoints by their mean cost.
  std::sort(out.begin(), out.end(), [&](const std::string& a, const std::string& b) {
    if ((a == "conductor") != (b == "conductor")) return a == "conductor";
    const double ca = policies[a]["cost_usd"].get<double>(), cb = policies[b]["cost_usd"].get<double>();
    return ca != cb ? ca < cb : a < b;
  });
  for (const char* n : {"router", "tfidf_router", "cascade", "best_single", "cheapest", "random", "oracle"})
    if (policies.contains(n)) out.push_back(n);
  for (auto it = policies.begin(); it != policies.end(); ++it)
    if (it.key().rfind("single:", 0) == 0) out.push_back(it.key());
  return out;
}

}  // namespace

std::string report_markdown(const json& r) {
  std::ostringstream os;
  os << "## Offline evaluation: split `" << r["split"].get<std::string>() << "`, " << r["n_queries"].get<std::size_t>()
     << " queries\n\n";
  os << "Traces `" << r["traces"].get<std::string>() << "`; " << r["dropped_queries"].get<std::size_t>()
     << " queries of the split without a complete row were left out; " << r["latency_note"].get<std::string>()
     << ". Strong (best single on train): `" << r["strong_worker"].get<std::string>() << "`, weak (cheapest on train): `"
     << r["weak_worker"].get<std::string>() << "`. Router and cascade tuned for cost weight "
     << fmt("%g", r["cost_weight"].get<double>()) << " per USD (" << r["cost_weight_source"].get<std::string>()
     << "). Conductor actions: " << r["conductor_actions"].get<std::string>() << ".\n\n";
  os << "| policy | quality | cost/query (USD) | total cost (USD) | p50 s | p95 s | p99 s | calls/query | strong calls | PGR | "
        "cost saved vs best single |\n";
  os << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  const json& P = r["policies"];
  for (const auto& name : ordered_policies(P)) {
    const json& p = P[name];
    os << "| " << name << " | " << fnum(p["quality"], "%.4f") << " | " << fnum(p["cost_usd"], "%.6f") << " | "
       << fnum(p["total_cost_usd"], "%.4f") << " | " << fnum(p["latency_p50_s"], "%.2f") << " | "
       << fnum(p["latency_p95_s"], "%.2f") << " | " << fnum(p["latency_p99_s"], "%.2f") << " | "
       << fnum(p["calls_per_query"], "%.2f") << " | " << pct(p["strong_call_fraction"]) << " | "
       << fnum(p["pgr"], "%.3f") << " | " << pct(p["cost_saved_vs_best_single"]) << " |\n";
  }
  os << "\n### Cost-quality frontiers\n\n";
  os << "AIQ (RouterBench) over mean cost per query in [" << fmt("%.6f", r["aiq_cost_range_usd"][0].get<double>())
     << ", " << fmt("%.6f", r["aiq_cost_range_usd"][1].get<double>())
     << "] USD; APGR and CPT (RouteLLM) over the share of queries that call the strong worker.\n\n";
  const bool boot = r.contains("aiq_bootstrap");
  if (boot)
    os << "AIQ intervals: " << r["aiq_bootstrap"]["method"].get<std::string>() << ", "
       << r["aiq_bootstrap"]["resamples"].get<int>() << " resamples (seed " << r["aiq_bootstrap"]["seed"].get<uint64_t>()
       << "); the last column is the conductor's AIQ minus the family's, with its interval and the share of "
          "resamples in which the conductor is not above.\n\n";
  os << "| family | points | AIQ |" << (boot ? " AIQ 95% CI | conductor - family (95% CI; share not above) |" : "")
     << " APGR | CPT(50%) | CPT(80%) | cost saved at best-single quality |\n";
  os << "|---|---:|---:|" << (boot ? "---:|---:|" : "") << "---:|---:|---:|---:|\n";
  auto ci = [](const json& v) {
    return "[" + fnum(v[0], "%.4f") + ", " + fnum(v[1], "%.4f") + "]";
  };
  const json& F = r["frontier"];
  std::vector<std::string> fams;
  for (const char* n : {"conductor", "router", "tfidf_router", "cascade", "single_workers", "best_single", "cheapest",
                        "random", "oracle"})
    if (F.contains(n)) fams.push_back(n);
  for (const auto& n : fams) {
    const json& f = F[n];
    os << "| " << n << " | " << f["points"].get<std::size_t>() << " | " << fnum(f["aiq"], "%.4f") << " | ";
    if (boot) {
      os << (f.contains("aiq_ci95") ? ci(f["aiq_ci95"]) : "-") << " | ";
      if (f.contains("conductor_aiq_minus_this")) {
        const json& d = f["conductor_aiq_minus_this"];
        os << fnum(d["observed"], "%+.4f") << " " << ci(d["ci95"]) << "; "
           << fmt("%.3f", d["share_of_resamples_not_above"].get<double>()) << " | ";
      } else {
        os << "- | ";
      }
    }
    os << (f.contains("apgr") ? fnum(f["apgr"], "%.3f") : "-") << " | " << (f.contains("cpt50") ? pct(f["cpt50"]) : "-")
       << " | " << (f.contains("cpt80") ? pct(f["cpt80"]) : "-") << " | " << pct(f["cost_saved_at_best_single_quality"])
       << " |\n";
  }
  if (r.contains("selection")) {
    const json& S = r["selection"];
    os << "\n### Selection on the " << S["split"].get<std::string>() << " split\n\n"
       << "Checkpoints that share a label were replayed on the " << S["split"].get<std::string>() << " split ("
       << S["queries"].get<std::size_t>() << " queries); the one with the highest mean reward (w_quality x quality - "
       << "w_cost x USD - w_latency x s) is the one evaluated above.\n\n";
    os << "| label | candidate | reward | quality | cost/query (USD) | chosen |\n|---|---|---:|---:|---:|:---:|\n";
    for (const auto& g : S["groups"])
      for (const auto& c : g["candidates"])
        os << "| " << g["label"].get<std::string>() << " | `" << c["checkpoint"].get<std::string>() << "` | "
           << fnum(c["reward"], "%.4f") << " | " << fnum(c["quality"], "%.4f") << " | " << fnum(c["cost_usd"], "%.6f")
           << " | " << (c["checkpoint"] == g["chosen"] ? "yes" : "") << " |\n";
  }
  if (r.contains("warnings") && !r["warnings"].empty()) {
    os << "\nWarnings:\n";
    for (const auto& w : r["warnings"]) os << "- " << w.get<std::string>() << ".\n";
  }
  if (P.contains("cascade") && P["cascade"].contains("chain")) {
    os << "\nCascade chain: ";
    bool first = true;
    for (const auto& w : P["cascade"]["chain"]) {
      os << (first ? "" : " -> ") << "`" << w.get<std::string>() << "`";
      first = false;
    }
    os << " (threshold " << fmt("%.3f", P["cascade"]["threshold"].get<double>()) << ").\n";
  }
  return os.str();
}

std::string frontier_svg(const json& r) {
  const double W = 1000, H = 560, L = 80, R = 340, T = 40, B = 60;
  const double pw = W - L - R, ph = H - T - B;
  // Collect every point to fit the axes (log cost axis: costs span orders of magnitude).
  double cmin = 1e300, cmax = 0, qmin = 1, qmax = 0;
  auto see = [&](double c, double q) {
    if (c > 0) cmin = std::min(cmin, c);
    cmax = std::max(cmax, c);
    qmin = std::min(qmin, q);
    qmax = std::max(qmax, q);
  };
  for (auto it = r["policies"].begin(); it != r["policies"].end(); ++it)
    see((*it)["cost_usd"].get<double>(), (*it)["quality"].get<double>());
  for (auto it = r["curves"].begin(); it != r["curves"].end(); ++it)
    for (const auto& p : *it) see(p["cost_usd"].get<double>(), p["quality"].get<double>());
  if (!(cmax > 0)) cmin = 1e-6, cmax = 1e-5;
  const double lx0 = std::floor(std::log10(cmin) * 2) / 2, lx1 = std::ceil(std::log10(cmax) * 2) / 2;
  const double y0 = std::max(0.0, std::floor((qmin - 0.02) * 20) / 20), y1 = std::min(1.0, std::ceil((qmax + 0.02) * 20) / 20);
  auto X = [&](double c) { return L + pw * (std::log10(std::max(c, std::pow(10.0, lx0))) - lx0) / (lx1 - lx0); };
  auto Y = [&](double q) { return T + ph * (1 - (q - y0) / std::max(1e-9, y1 - y0)); };

  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W
    << " " << H << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  s << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s << "<text x=\"" << L << "\" y=\"24\" font-size=\"15\">Cost-quality frontier, split " << xml_escape(r["split"].get<std::string>())
    << " (" << r["n_queries"].get<std::size_t>() << " queries)</text>\n";
  // Grid and ticks.
  for (int e = static_cast<int>(std::floor(lx0)); e <= static_cast<int>(std::ceil(lx1)); ++e)
    for (int m : {1, 2, 5}) {
      const double c = m * std::pow(10.0, e);
      const double lc = std::log10(c);
      if (lc < lx0 - 1e-9 || lc > lx1 + 1e-9) continue;
      const double x = X(c);
      s << "<line x1=\"" << x << "\" y1=\"" << T << "\" x2=\"" << x << "\" y2=\"" << T + ph << "\" stroke=\"#e5e5e5\"/>\n";
      s << "<text x=\"" << x << "\" y=\"" << T + ph + 16 << "\" text-anchor=\"middle\">" << fmt("%g", c) << "</text>\n";
    }
  for (double q = y0; q <= y1 + 1e-9; q += 0.05) {
    const double y = Y(q);
    s << "<line x1=\"" << L << "\" y1=\"" << y << "\" x2=\"" << L + pw << "\" y2=\"" << y << "\" stroke=\"#e5e5e5\"/>\n";
    s << "<text x=\"" << L - 6 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\">" << fmt("%.2f", q) << "</text>\n";
  }
  s << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"none\" stroke=\"#333\"/>\n";
  s << "<text x=\"" << L + pw / 2 << "\" y=\"" << H - 18 << "\" text-anchor=\"middle\">mean cost per query (USD, log scale)</text>\n";
  s << "<text transform=\"translate(22," << T + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\">mean quality</text>\n";

  // Frontier families: hull as a line, sweep points as small dots.
  struct Fam { const char* name; const char* color; };
  const Fam fams[] = {{"conductor", "#d62728"}, {"router", "#1f77b4"}, {"tfidf_router", "#17becf"}, {"cascade", "#2ca02c"},
                      {"single_workers", "#7f7f7f"}};
  double ly = T + 10;
  auto legend = [&](const std::string& label, const std::string& color, bool line) {
    const double lx = L + pw + 20;
    if (line)
      s << "<line x1=\"" << lx << "\" y1=\"" << ly << "\" x2=\"" << lx + 22 << "\" y2=\"" << ly << "\" stroke=\"" << color
        << "\" stroke-width=\"2\"/>\n";
    else
      s << "<circle cx=\"" << lx + 11 << "\" cy=\"" << ly << "\" r=\"5\" fill=\"" << color << "\"/>\n";
    s << "<text x=\"" << lx + 30 << "\" y=\"" << ly + 4 << "\">" << xml_escape(label) << "</text>\n";
    ly += 20;
  };
  for (const auto& f : fams) {
    if (!r["curves"].contains(f.name)) continue;
    const json& pts = r["curves"][f.name];
    for (const auto& p : pts)
      s << "<circle cx=\"" << X(p["cost_usd"].get<double>()) << "\" cy=\"" << Y(p["quality"].get<double>())
        << "\" r=\"2.5\" fill=\"" << f.color << "\" fill-opacity=\"0.5\"/>\n";
    if (r["frontier"].contains(f.name)) {
      // Hull segments are straight in linear cost (mixing two operating points), so on the log
      // axis each one is drawn through intermediate points.
      std::ostringstream path;
      const json& hull = r["frontier"][f.name]["hull"];
      for (std::size_t h = 0; h < hull.size(); ++h) {
        const double c1 = hull[h][0].get<double>(), q1 = hull[h][1].get<double>();
        if (h > 0) {
          const double c0 = hull[h - 1][0].get<double>(), q0 = hull[h - 1][1].get<double>();
          for (int k = 1; k < 24; ++k) {
            const double t = k / 24.0;
            path << X(c0 + t * (c1 - c0)) << "," << Y(q0 + t * (q1 - q0)) << " ";
          }
        }
        path << X(c1) << "," << Y(q1) << " ";
      }
      s << "<polyline points=\"" << path.str() << "\" fill=\"none\" stroke=\"" << f.color << "\" stroke-width=\"2\"/>\n";
      const json& aiq = r["frontier"][f.name]["aiq"];
      legend(std::string(f.name) + " frontier" + (aiq.is_null() ? "" : " (AIQ " + fmt("%.3f", aiq.get<double>()) + ")"),
             f.color, true);
    }
  }
  // Single-worker labels.
  if (r["curves"].contains("single_workers"))
    for (const auto& p : r["curves"]["single_workers"]) {
      std::string name = p["worker"].get<std::string>();
      const auto slash = name.rfind('/');
      if (slash != std::string::npos) name = name.substr(slash + 1);
      s << "<text x=\"" << X(p["cost_usd"].get<double>()) + 5 << "\" y=\"" << Y(p["quality"].get<double>()) - 4
        << "\" font-size=\"9\" fill=\"#555\">" << xml_escape(name) << "</text>\n";
    }
  // Headline policies as large markers.
  const std::pair<const char*, const char*> marks[] = {{"conductor", "#d62728"}, {"router", "#1f77b4"}, {"cascade", "#2ca02c"},
                                                       {"best_single", "#000000"}, {"cheapest", "#8c564b"},
                                                       {"random", "#bcbd22"}, {"oracle", "#9467bd"}};
  for (const auto& [name, color] : marks) {
    if (!r["policies"].contains(name)) continue;
    const json& p = r["policies"][name];
    const double x = X(p["cost_usd"].get<double>()), y = Y(p["quality"].get<double>());
    s << "<rect x=\"" << x - 5 << "\" y=\"" << y - 5 << "\" width=\"10\" height=\"10\" fill=\"" << color
      << "\" stroke=\"white\"/>\n";
    legend(std::string(name) + " (" + fmt("%.3f", p["quality"].get<double>()) + ", $" + fmt("%.5f", p["cost_usd"].get<double>()) + ")",
           color, false);
  }
  s << "</svg>\n";
  return s.str();
}

std::string write_report(const json& full, const std::string& dir) {
  make_dirs(dir);
  json report = full;
  if (report.contains("per_query")) {
    write_file_atomic(dir + "/outcomes.json", report["per_query"].dump() + "\n");
    report.erase("per_query");
    report["per_query_file"] = "outcomes.json";
  }
  const std::string md = report_markdown(report);
  write_file_atomic(dir + "/report.json", report.dump(2) + "\n");
  write_file_atomic(dir + "/report.md", md);
  write_file_atomic(dir + "/frontier.svg", frontier_svg(report));
  return md;
}

}  // namespace conductor::eval
