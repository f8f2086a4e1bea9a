#include "eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "core/error.h"
#include "core/random.h"

namespace conductor::eval {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kEps = 1e-12;
}  // namespace

PolicyMetrics summarize(const std::vector<QueryResult>& results, std::size_t n_workers, int strong) {
  if (results.empty()) fail("cannot summarize a policy over zero queries");
  PolicyMetrics m;
  m.n_queries = results.size();
  m.call_share.assign(n_workers, 0.0);
  std::vector<double> latencies;
  latencies.reserve(results.size());
  double q = 0.0, c = 0.0, calls = 0.0, strong_queries = 0.0;
  for (const auto& r : results) {
    q += r.quality;
    c += r.cost_usd;
    calls += static_cast<double>(r.calls.size());
    latencies.push_back(r.latency_s);
    bool called_strong = false;
    for (int w : r.calls) {
      CONDUCTOR_CHECK(w >= 0 && static_cast<std::size_t>(w) < n_workers, "worker index ", w);
      m.call_share[w] += 1.0;
      if (w == strong) called_strong = true;
    }
    if (called_strong) strong_queries += 1.0;
  }
  const double n = static_cast<double>(results.size());
  m.quality = q / n;
  m.total_cost_usd = c;
  m.cost_usd = c / n;
  m.calls_per_query = calls / n;
  for (auto& s : m.call_share) s = calls > 0 ? s / calls : 0.0;
  m.latency_p50_s = percentile(latencies, 50);
  m.latency_p95_s = percentile(latencies, 95);
  m.latency_p99_s = percentile(latencies, 99);
  m.strong_call_fraction = strong >= 0 ? strong_queries / n : kNaN;
  return m;
}

double pgr(double q_router, double q_weak, double q_strong) {
  if (std::fabs(q_strong - q_weak) < kEps)
    fail("PGR is undefined: the strong and weak models have the same quality (", q_strong, ")");
  return (q_router - q_weak) / (q_strong - q_weak);
}

double apgr(std::vector<CurvePoint> curve) {
  for (const auto& p : curve)
    if (!(p.x >= -kEps && p.x <= 1.0 + kEps) || !std::isfinite(p.y))
      fail("APGR: point (", p.x, ", ", p.y, ") has a strong-call fraction outside [0, 1] or a non-finite PGR");
  auto has_x = [&](double x) {
    return std::any_of(curve.begin(), curve.end(), [&](const CurvePoint& p) { return std::fabs(p.x - x) < kEps; });
  };
  if (!has_x(0.0)) curve.push_back({0.0, 0.0});
  if (!has_x(1.0)) curve.push_back({1.0, 1.0});
  // Sort by x; at equal x the best PGR is the one a threshold sweep would keep.
  std::sort(curve.begin(), curve.end(), [](const CurvePoint& a, const CurvePoint& b) {
    return a.x < b.x || (a.x == b.x && a.y > b.y);
  });
  std::vector<CurvePoint> pts;
  for (const auto& p : curve)
    if (pts.empty() || std::fabs(p.x - pts.back().x) >= kEps) pts.push_back(p);
  double area = 0.0;
  for (std::size_t i = 1; i < pts.size(); ++i)
    area += 0.5 * (pts[i].y + pts[i - 1].y) * (pts[i].x - pts[i - 1].x);
  return area;
}

double cpt(const std::vector<CurvePoint>& curve, double target) {
  double best = kNaN;
  for (const auto& p : curve)
    if (p.y >= target - kEps && (std::isnan(best) || p.x < best)) best = p.x;
  return best;
}

std::vector<CurvePoint> nondecreasing_convex_hull(std::vector<CurvePoint> points) {
  for (const auto& p : points)
    if (!std::isfinite(p.x) || !std::isfinite(p.y)) fail("cost-quality point (", p.x, ", ", p.y, ") is not finite");
  std::sort(points.begin(), points.end(), [](const CurvePoint& a, const CurvePoint& b) {
    return a.x < b.x || (a.x == b.x && a.y > b.y);
  });
  // Pareto front: each kept point is strictly better than every cheaper one.
  std::vector<CurvePoint> front;
  for (const auto& p : points)
    if (front.empty() || p.y > front.back().y + kEps) front.push_back(p);
  // Upper hull (Andrew's monotone chain): drop a vertex that lies on or below the chord of its
  // neighbours, since mixing the neighbours does at least as well.
  std::vector<CurvePoint> hull;
  for (const auto& p : front) {
    while (hull.size() >= 2) {
      const auto& a = hull[hull.size() - 2];
      const auto& b = hull.back();
      const double cross = (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x);
      if (cross >= 0) hull.pop_back();
      else break;
    }
    hull.push_back(p);
  }
  return hull;
}

double hull_value(const std::vector<CurvePoint>& hull, double c) {
  if (hull.empty() || c < hull.front().x) return 0.0;
  if (c >= hull.back().x) return hull.back().y;
  for (std::size_t i = 1; i < hull.size(); ++i) {
    if (c <= hull[i].x) {
      const auto& a = hull[i - 1];
      const auto& b = hull[i];
      return a.y + (b.y - a.y) * (c - a.x) / (b.x - a.x);
    }
  }
  return hull.back().y;
}

double aiq(const std::vector<CurvePoint>& points, double c_min, double c_max) {
  if (!(c_max > c_min)) fail("AIQ needs a cost range with c_max > c_min, got [", c_min, ", ", c_max, "]");
  if (points.empty()) fail("AIQ of a policy without any cost-quality point");
  const auto hull = nondecreasing_convex_hull(points);
  std::vector<double> xs{c_min, c_max};
  for (const auto& h : hull)
    if (h.x > c_min && h.x < c_max) xs.push_back(h.x);
  std::sort(xs.begin(), xs.end());
  double area = 0.0;
  for (std::size_t i = 1; i < xs.size(); ++i) {
    const double a = xs[i - 1], b = xs[i];
    if (b <= hull.front().x) continue;  // nothing is delivered below the cheapest operating point
    area += 0.5 * (hull_value(hull, a) + hull_value(hull, b)) * (b - a);
  }
  return area / (c_max - c_min);
}

std::vector<std::string> frontier_coverage_warnings(const std::vector<CurvePoint>& points, CurvePoint best_single,
                                                    CurvePoint cheapest, double tolerance, double cheap_factor) {
  std::vector<std::string> out;
  if (points.size() < 2) return out;
  const CurvePoint* top = &points[0];
  const CurvePoint* low = &points[0];
  for (const auto& p : points) {
    if (p.y > top->y || (p.y == top->y && p.x < top->x)) top = &p;
    if (p.x < low->x || (p.x == low->x && p.y > low->y)) low = &p;
  }
  char buf[512];
  if (top->y < best_single.y - tolerance && top->x < best_single.x) {
    std::snprintf(buf, sizeof buf,
                  "top of the frontier not covered: the best point reaches quality %.4f at $%.6f per query, below the "
                  "best single worker's %.4f at $%.6f; train at lower cost weights",
                  top->y, top->x, best_single.y, best_single.x);
    out.push_back(buf);
  }
  // (A free cheapest worker, cost 0, has no ratio to compare with: no cheap-end check then.)
  if (cheapest.x > 0 && low->x > cheap_factor * cheapest.x && low->y > cheapest.y) {
    std::snprintf(buf, sizeof buf,
                  "cheap end of the frontier not covered: the cheapest point costs $%.6f per query (quality %.4f), "
                  "%.1f x the cheapest worker's $%.6f (quality %.4f), and AIQ counts 0 below it; train at higher cost "
                  "weights",
                  low->x, low->y, low->x / cheapest.x, cheapest.x, cheapest.y);
    out.push_back(buf);
  }
  return out;
}

double cost_saved_at_quality(const std::vector<CurvePoint>& points, double ref_quality, double ref_cost) {
  if (!(ref_cost > 0)) fail("cost saved: the reference cost must be positive, got ", ref_cost);
  if (points.empty()) return kNaN;
  const auto hull = nondecreasing_convex_hull(points);
  if (hull.back().y < ref_quality - kEps) return kNaN;
  double c = hull.front().x;
  if (hull.front().y < ref_quality - kEps) {
    for (std::size_t i = 1; i < hull.size(); ++i) {
      if (hull[i].y >= ref_quality - kEps) {
        const auto& a = hull[i - 1];
        const auto& b = hull[i];
        c = a.x + (b.x - a.x) * (ref_quality - a.y) / (b.y - a.y);
        break;
      }
    }
  }
  return 1.0 - c / ref_cost;
}

namespace {
// Every family's AIQ with query row i counted weight[i] times, on the common cost range.
std::map<std::string, double> weighted_aiq(const std::map<std::string, std::vector<PointOutcomes>>& families,
                                           const std::vector<double>& weight) {
  const std::size_t n = weight.size();
  double total = 0;
  for (double w : weight) total += w;
  std::map<std::string, std::vector<CurvePoint>> pts;
  double c_max = 0.0;
  for (const auto& [name, points] : families) {
    auto& v = pts[name];
    for (const auto& p : points) {
      double c = 0.0, q = 0.0;
      for (std::size_t i = 0; i < n; ++i) {
        c += weight[i] * p.cost[i];
        q += weight[i] * p.quality[i];
      }
      v.push_back({c / total, q / total});
      c_max = std::max(c_max, v.back().x);
    }
  }
  std::map<std::string, double> out;
  for (const auto& [name, v] : pts) out[name] = c_max > 0 ? aiq(v, 0.0, c_max) : kNaN;
  return out;
}

std::size_t check_families(const std::map<std::string, std::vector<PointOutcomes>>& families, const char* what) {
  std::size_t n = 0;
  bool first = true;
  for (const auto& [name, points] : families) {
    if (points.empty()) fail(what, ": family '", name, "' has no operating point");
    for (const auto& p : points) {
      if (p.cost.size() != p.quality.size())
        fail(what, ": family '", name, "' has ", p.cost.size(), " costs and ", p.quality.size(), " qualities");
      if (first) n = p.cost.size();
      if (p.cost.size() != n)
        fail(what, ": family '", name, "' has a point over ", p.cost.size(), " queries, others over ", n,
             ": a paired bootstrap needs the same queries everywhere");
      first = false;
    }
  }
  if (families.empty() || n == 0) fail(what, " needs at least one family over at least one query");
  return n;
}
}  // namespace

std::map<std::string, std::vector<double>> pooled_bootstrap_aiq(
    const std::vector<std::map<std::string, std::vector<PointOutcomes>>>& runs, int resamples, uint64_t seed,
    std::map<std::string, double>* observed) {
  if (resamples < 1) fail("pooled AIQ bootstrap needs at least 1 resample, got ", resamples);
  if (runs.empty()) fail("pooled AIQ bootstrap needs at least one evaluation");
  const std::size_t n = check_families(runs[0], "pooled AIQ bootstrap (run 1)");
  for (std::size_t s = 1; s < runs.size(); ++s) {
    const std::string what = "pooled AIQ bootstrap (run " + std::to_string(s + 1) + ")";
    if (check_families(runs[s], what.c_str()) != n)
      fail(what, ": ", "its points cover a different number of queries than run 1's (", n, ")");
    for (const auto& [name, pts] : runs[0])
      if (!runs[s].count(name)) fail(what, ": family '", name, "' of run 1 is missing");
    for (const auto& [name, pts] : runs[s])
      if (!runs[0].count(name)) fail(what, ": family '", name, "' is not in run 1");
  }
  const std::size_t S = runs.size();
  if (observed) {
    observed->clear();
    const std::vector<double> ones(n, 1.0);
    for (const auto& run : runs)
      for (const auto& [name, v] : weighted_aiq(run, ones)) (*observed)[name] += v / static_cast<double>(S);
  }
  std::map<std::string, std::vector<double>> out;
  Rng rng(seed);
  std::vector<double> weight(n);
  for (int b = 0; b < resamples; ++b) {
    std::vector<std::size_t> drawn(S);
    for (auto& d : drawn) d = rng.below(S);
    std::fill(weight.begin(), weight.end(), 0.0);
    for (std::size_t k = 0; k < n; ++k) weight[rng.below(n)] += 1.0;
    std::map<std::string, double> sum;
    for (std::size_t d : drawn)
      for (const auto& [name, v] : weighted_aiq(runs[d], weight)) sum[name] += v / static_cast<double>(S);
    for (const auto& [name, v] : sum) out[name].push_back(v);
  }
  return out;
}

std::map<std::string, std::vector<double>> bootstrap_aiq(
    const std::map<std::string, std::vector<PointOutcomes>>& families, int resamples, uint64_t seed) {
  if (resamples < 1) fail("AIQ bootstrap needs at least 1 resample, got ", resamples);
  const std::size_t n = check_families(families, "AIQ bootstrap");
  std::map<std::string, std::vector<double>> out;
  Rng rng(seed);
  std::vector<double> weight(n);
  for (int b = 0; b < resamples; ++b) {
    std::fill(weight.begin(), weight.end(), 0.0);
    for (std::size_t k = 0; k < n; ++k) weight[rng.below(n)] += 1.0;
    for (const auto& [name, v] : weighted_aiq(families, weight)) out[name].push_back(v);
  }
  return out;
}

}  // namespace conductor::eval
