// `conductor eval-pool`: frontier AIQ pooled over the evaluations of several training seeds.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/stats.h"
#include "eval/evaluate.h"
#include "eval/metrics.h"

namespace conductor::eval {

namespace {

json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open (run `conductor eval --report DIR` with this build: it writes outcomes.json)");
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

std::string fmt4(const json& v) {
  if (v.is_null()) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v.get<double>());
  return buf;
}

}  // namespace

json pool_evaluations(const std::vector<std::string>& dirs, int resamples, uint64_t seed) {
  if (dirs.size() < 2) fail("eval-pool: give at least two --report folders (one evaluation per training seed)");
  std::vector<std::map<std::string, std::vector<PointOutcomes>>> runs;
  json ids0;
  std::vector<std::string> split;
  for (const auto& dir : dirs) {
    const std::string path = dir + "/outcomes.json";
    const json j = parse_json(read_all(path), path);
    std::map<std::string, std::vector<PointOutcomes>> fams;
    try {
      const json& ids = j.at("query_ids");
      if (runs.empty()) {
        ids0 = ids;
      } else if (ids != ids0) {
        fail(path, ": its queries differ from those of ", dirs[0], "/outcomes.json (", ids.size(), " vs ", ids0.size(),
             " query ids): pool evaluations of the same trace file and split");
      }
      for (auto it = j.at("families").begin(); it != j.at("families").end(); ++it)
        for (const json& p : *it) {
          PointOutcomes po;
          po.cost = p.at("cost_usd").get<std::vector<double>>();
          po.quality = p.at("quality").get<std::vector<double>>();
          if (po.cost.size() != ids.size() || po.quality.size() != ids.size())
            fail(path, ": families.", it.key(), ": a point has ", po.cost.size(), " costs and ", po.quality.size(),
                 " qualities for ", ids.size(), " queries");
          fams[it.key()].push_back(std::move(po));
        }
    } catch (const json::exception& e) {
      fail(path, ": not an outcomes file of `conductor eval`: ", e.what());
    }
    if (!fams.count("conductor")) fail(path, ": no conductor family: evaluate at least one --checkpoint");
    runs.push_back(std::move(fams));
  }
  std::map<std::string, double> observed;
  const auto boot = pooled_bootstrap_aiq(runs, resamples, seed, &observed);
  auto interval = [](const std::vector<double>& v) {
    return json::array({num(percentile(v, 2.5)), num(percentile(v, 97.5))});
  };
  json fams = json::object();
  const auto& cond = boot.at("conductor");
  for (const auto& [name, values] : boot) {
    json f;
    f["aiq_mean_over_runs"] = num(observed[name]);
    f["aiq_ci95"] = interval(values);
    if (name != "conductor") {
      std::vector<double> diff(values.size());
      std::size_t not_above = 0;
      for (std::size_t b = 0; b < values.size(); ++b) {
        diff[b] = cond[b] - values[b];
        not_above += diff[b] <= 0 ? 1 : 0;
      }
      f["conductor_aiq_minus_this"] = {{"observed", num(observed["conductor"] - observed[name])},
                                       {"ci95", interval(diff)},
                                       {"share_of_resamples_not_above", static_cast<double>(not_above) / diff.size()}};
    }
    fams[name] = f;
  }
  return json{{"reports", dirs},
              {"queries", ids0.size()},
              {"resamples", resamples},
              {"seed", seed},
              {"method",
               "paired percentile bootstrap over queries and runs: each resample draws the runs and the query rows "
               "with replacement (the same rows for every run); a family's value is the mean of its AIQ over the "
               "drawn runs"},
              {"families", fams}};
}

std::string pooled_markdown(const json& r) {
  std::ostringstream os;
  os << "## Frontier AIQ pooled over " << r["reports"].size() << " evaluations, " << r["queries"].get<std::size_t>()
     << " queries\n\n"
     << r["method"].get<std::string>() << "; " << r["resamples"].get<int>() << " resamples (seed "
     << r["seed"].get<uint64_t>() << ").\n\n"
     << "| family | AIQ (mean over runs) | 95% CI | conductor - family | 95% CI | share not above |\n"
     << "|---|---:|---:|---:|---:|---:|\n";
  for (auto it = r["families"].begin(); it != r["families"].end(); ++it) {
    const json& f = *it;
    os << "| " << it.key() << " | " << fmt4(f["aiq_mean_over_runs"]) << " | [" << fmt4(f["aiq_ci95"][0]) << ", "
       << fmt4(f["aiq_ci95"][1]) << "] | ";
    if (f.contains("conductor_aiq_minus_this")) {
      const json& d = f["conductor_aiq_minus_this"];
      char share[32];
      std::snprintf(share, sizeof share, "%.3f", d["share_of_resamples_not_above"].get<double>());
      os << (d["observed"].is_null() ? std::string("n/a") : (d["observed"].get<double>() >= 0 ? "+" : "") + fmt4(d["observed"]))
         << " | [" << fmt4(d["ci95"][0]) << ", " << fmt4(d["ci95"][1]) << "] | " << share << " |\n";
    } else {
      os << "- | - | - |\n";
    }
  }
  return os.str();
}

}  // namespace conductor::eval
