// Metrics of offline evaluation: pure functions over per-query results and cost-quality curves.
//
// Definitions and their sources:
//  - PGR, APGR, CPT: RouteLLM (Ong et al., arXiv 2406.18665, section 5.1).
//      PGR(router) = (q_router - q_weak) / (q_strong - q_weak)
//      APGR = integral over c in [0, 1] of PGR as a function of c, the fraction of queries that call
//             the strong model. RouteLLM approximates it with 10 equal steps of c; we integrate the
//             measured curve exactly with the trapezoid rule, after anchoring it at the two routers
//             every threshold sweep contains: (0, 0) = all weak and (1, 1) = all strong.
//      CPT(x%) = the smallest c at which the router reaches PGR >= x. We take the smallest measured
//             c (no interpolation between operating points: only measured points can be deployed).
//  - AIQ: RouterBench (Hu et al., arXiv 2403.12031, section 3): the average quality of a router
//      over a cost range, 1/(c_max - c_min) * integral over [c_min, c_max] of R~(c) dc, where R~ is the
//      non-decreasing convex hull of the router's (cost, quality) points. As in the RouterBench
//      reference code (withmartian/routerbench, evaluation), R~ is 0 below the cheapest point,
//      piecewise linear between hull vertices (mixing two operating points at random realises every
//      point between them), and flat after the most expensive one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/stats.h"  // percentile
#include "world/replay_table.h"  // QueryResult

namespace conductor::eval {

struct PolicyMetrics {
  std::size_t n_queries = 0;
  double quality = 0.0;          // mean
  double cost_usd = 0.0;         // mean per query
  double total_cost_usd = 0.0;
  double latency_p50_s = 0.0;
  double latency_p95_s = 0.0;
  double latency_p99_s = 0.0;
  double calls_per_query = 0.0;
  std::vector<double> call_share;  // [n_workers]: share of all calls that went to each worker
  double strong_call_fraction = 0.0;  // fraction of queries that called `strong` (NaN if strong < 0)
};

// Aggregates per-query results. Throws conductor::Error when `results` is empty.
PolicyMetrics summarize(const std::vector<QueryResult>& results, std::size_t n_workers, int strong = -1);


// RouteLLM's performance gap recovered. Throws when q_strong == q_weak (the gap is undefined).
double pgr(double q_router, double q_weak, double q_strong);

struct CurvePoint {
  double x = 0.0;
  double y = 0.0;
};

// APGR of a router's (strong-call fraction, PGR) points (x in [0, 1]); see the header comment.
double apgr(std::vector<CurvePoint> pgr_curve);
// CPT(target): smallest strong-call fraction with PGR >= target, or NaN when never reached.
double cpt(const std::vector<CurvePoint>& pgr_curve, double target);

// The non-decreasing convex hull (upper concave envelope of the Pareto front) of (cost, quality)
// points, sorted by cost. Dominated points (costlier and not better) are dropped.
std::vector<CurvePoint> nondecreasing_convex_hull(std::vector<CurvePoint> points);
// Value of the hull at cost c (0 below its first point, flat after its last).
double hull_value(const std::vector<CurvePoint>& hull, double c);
// RouterBench's AIQ of (cost, quality) points over [c_min, c_max] (c_max > c_min).
double aiq(const std::vector<CurvePoint>& points, double c_min, double c_max);

// Cost saved at equal quality: 1 - c*/ref_cost, where c* is the lowest cost at which the hull of
// `points` reaches ref_quality. NaN when the policy never reaches ref_quality.
double cost_saved_at_quality(const std::vector<CurvePoint>& points, double ref_quality, double ref_cost);

// Does a frontier of several operating points cover both ends of the cost range? AIQ counts 0 below
// a family's cheapest point and its best quality flat above its most expensive one, so a frontier
// whose training cost weights stop short of either end loses area that the routers' sweeps (cost
// weight 0 to 1e5) keep. Returns one sentence per end that is not covered (empty when both are, or
// when there are fewer than 2 points: a single checkpoint is an operating point, not a frontier):
//  - top: the best quality is more than `tolerance` below the best single worker's and the point
//    that reaches it costs less than that worker (cost weights too high for the top);
//  - bottom: the cheapest point costs more than `cheap_factor` x the cheapest worker's cost and
//    its quality is above that worker's (cost weights too low for the cheap end).
std::vector<std::string> frontier_coverage_warnings(const std::vector<CurvePoint>& points, CurvePoint best_single,
                                                    CurvePoint cheapest, double tolerance = 0.005,
                                                    double cheap_factor = 1.5);

// Per-query outcomes of one operating point of a frontier: row i of every point is the same query.
struct PointOutcomes {
  std::vector<double> cost;
  std::vector<double> quality;
};

// Paired bootstrap of AIQ over queries (Efron and Tibshirani, An Introduction to the Bootstrap,
// 1993, ch. 13, percentile intervals). Each resample draws n query rows with replacement, one draw
// shared by every family, so that differences between families are paired; each point becomes its
// resampled mean (cost, quality); c_max is the largest resampled point cost of any family, as in
// the report's common range [0, c_max]; every family's AIQ is computed over it. Returns, per
// family, its AIQ in resample 0..resamples-1 (same seed, same values). Throws when the families'
// points do not all have the same number of rows, or there are none.
std::map<std::string, std::vector<double>> bootstrap_aiq(
    const std::map<std::string, std::vector<PointOutcomes>>& families, int resamples, uint64_t seed);

// The same pooled over evaluations of several training seeds on the same queries (`runs[s]` = the
// families of seed s; every run must have the same families and rows): each resample draws the
// seeds with replacement and the query rows with replacement (the same rows for every seed: paired
// over queries and seeds); a family's value is the mean over the drawn seeds of its AIQ, each on
// its own run's common cost range as in bootstrap_aiq. With `observed` given, also the mean over
// the runs of each family's observed AIQ.
std::map<std::string, std::vector<double>> pooled_bootstrap_aiq(
    const std::vector<std::map<std::string, std::vector<PointOutcomes>>>& runs, int resamples, uint64_t seed,
    std::map<std::string, double>* observed = nullptr);

}  // namespace conductor::eval
