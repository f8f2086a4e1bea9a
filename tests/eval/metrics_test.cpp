// Metrics against hand-computed values.
// Sources: RouteLLM (Ong et al. 2024, arXiv 2406.18665, sec. 5.1) for PGR/APGR/CPT;
// RouterBench (Hu et al. 2024, arXiv 2403.12031, sec. 3 and the reference evaluation code) for AIQ.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "eval/metrics.h"

namespace conductor::eval {
namespace {

TEST(Summarize, HandComputed) {
  std::vector<QueryResult> r = {{1.0, 0.1, 1.0, {0}}, {0.0, 0.3, 3.0, {0, 2}}, {0.5, 0.2, 2.0, {1}}};
  const auto m = summarize(r, 3, /*strong=*/2);
  EXPECT_EQ(m.n_queries, 3u);
  EXPECT_DOUBLE_EQ(m.quality, 0.5);
  EXPECT_NEAR(m.cost_usd, 0.2, 1e-15);
  EXPECT_NEAR(m.total_cost_usd, 0.6, 1e-15);
  EXPECT_DOUBLE_EQ(m.calls_per_query, 4.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.call_share[0], 0.5);
  EXPECT_DOUBLE_EQ(m.call_share[1], 0.25);
  EXPECT_DOUBLE_EQ(m.call_share[2], 0.25);
  EXPECT_DOUBLE_EQ(m.strong_call_fraction, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.latency_p50_s, 2.0);
  EXPECT_NEAR(m.latency_p95_s, 2.9, 1e-12);  // rank 1.9 between 2 and 3
  EXPECT_THROW(summarize({}, 3), Error);
}

TEST(RouteLLM, PerformanceGapRecovered) {
  // PGR = (q_router - q_weak) / (q_strong - q_weak)
  EXPECT_DOUBLE_EQ(pgr(0.7, 0.5, 0.9), 0.5);
  EXPECT_DOUBLE_EQ(pgr(0.5, 0.5, 0.9), 0.0);
  EXPECT_THROW(pgr(0.5, 0.6, 0.6), Error);
}

TEST(RouteLLM, ApgrOfRandomRouterIsOneHalf) {
  // A random router that calls the strong model with probability c has PGR = c; its APGR is the
  // area under the diagonal, 0.5 (RouteLLM, sec. 5.1: the random baseline).
  EXPECT_DOUBLE_EQ(apgr({{0.0, 0.0}, {0.25, 0.25}, {0.5, 0.5}, {1.0, 1.0}}), 0.5);
  EXPECT_DOUBLE_EQ(apgr({}), 0.5);  // only the anchors: all-weak and all-strong
}

TEST(RouteLLM, ApgrAndCptHandComputed) {
  // Points (20%, 0.5) and (50%, 0.8), anchored at (0, 0) and (1, 1). Trapezoids:
  // 0.2 * (0 + 0.5) / 2 + 0.3 * (0.5 + 0.8) / 2 + 0.5 * (0.8 + 1) / 2 = 0.05 + 0.195 + 0.45.
  const std::vector<CurvePoint> curve = {{0.5, 0.8}, {0.2, 0.5}};
  EXPECT_NEAR(apgr(curve), 0.695, 1e-12);
  // CPT(x%): minimum strong-call share whose PGR reaches x.
  EXPECT_DOUBLE_EQ(cpt(curve, 0.5), 0.2);
  EXPECT_DOUBLE_EQ(cpt(curve, 0.8), 0.5);
  EXPECT_TRUE(std::isnan(cpt(curve, 0.9)));
  EXPECT_THROW(apgr({{1.5, 0.2}}), Error);
}

TEST(RouterBench, NonDecreasingConvexHull) {
  const std::vector<CurvePoint> pts = {{1, 0.5}, {2, 0.6}, {3, 0.9}, {4, 0.85}, {2.5, 0.55}};
  const auto hull = nondecreasing_convex_hull(pts);
  // (4, .85) and (2.5, .55) are dominated; (2, .6) lies below the chord (1, .5)-(3, .9) (0.7 at 2).
  ASSERT_EQ(hull.size(), 2u);
  EXPECT_DOUBLE_EQ(hull[0].x, 1);
  EXPECT_DOUBLE_EQ(hull[1].x, 3);
  EXPECT_DOUBLE_EQ(hull_value(hull, 0.5), 0.0);
  EXPECT_DOUBLE_EQ(hull_value(hull, 2), 0.7);
  EXPECT_DOUBLE_EQ(hull_value(hull, 10), 0.9);
}

TEST(RouterBench, AiqHandComputed) {
  // Hull (1, .5)-(3, .9), flat to 4, 0 below 1. Over [0, 4]:
  // area = 0 + 2 * (0.5 + 0.9) / 2 + 1 * 0.9 = 2.3; AIQ = 2.3 / 4 = 0.575. This is what the
  // RouterBench reference code computes (trapezoid of the hull extended to max cost, / max cost).
  const std::vector<CurvePoint> pts = {{1, 0.5}, {2, 0.6}, {3, 0.9}, {4, 0.85}, {2.5, 0.55}};
  EXPECT_NEAR(aiq(pts, 0.0, 4.0), 0.575, 1e-12);
  // Over [1, 3]: the mean of a linear segment from .5 to .9 = 0.7.
  EXPECT_NEAR(aiq(pts, 1.0, 3.0), 0.7, 1e-12);
  // A single operating point (2, 0.8) over [0, 4]: 0.8 on [2, 4] -> 0.4.
  EXPECT_NEAR(aiq({{2, 0.8}}, 0.0, 4.0), 0.4, 1e-12);
  EXPECT_THROW(aiq(pts, 1.0, 1.0), Error);
}

TEST(CostSaved, AtEqualQuality) {
  const std::vector<CurvePoint> pts = {{1, 0.5}, {3, 0.9}};
  // The hull reaches 0.8 at c = 1 + 2 * 0.3 / 0.4 = 2.5; versus a reference that costs 4: 37.5%.
  EXPECT_NEAR(cost_saved_at_quality(pts, 0.8, 4.0), 0.375, 1e-12);
  EXPECT_NEAR(cost_saved_at_quality(pts, 0.4, 4.0), 0.75, 1e-12);
  EXPECT_TRUE(std::isnan(cost_saved_at_quality(pts, 0.95, 4.0)));
}

TEST(FrontierCoverage, WarnsWhenTheCostWeightsStopShortOfEitherEnd) {
  const CurvePoint best{4.0, 0.8}, cheap{1.0, 0.5};
  // Covered: the top reaches the best single worker's quality (within 0.005), the cheapest point
  // is the cheapest worker's.
  EXPECT_TRUE(frontier_coverage_warnings({{1, 0.5}, {2, 0.7}, {3, 0.797}}, best, cheap).empty());
  // Top not covered: best quality 0.7 at cost 2 < 4.
  auto w = frontier_coverage_warnings({{1, 0.5}, {2, 0.7}}, best, cheap);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].find("top of the frontier not covered"), std::string::npos) << w[0];
  EXPECT_NE(w[0].find("0.7000 at $2.000000"), std::string::npos) << w[0];
  EXPECT_NE(w[0].find("lower cost weights"), std::string::npos) << w[0];
  // A top below the best single worker that costs more than it is a weak policy, not a short grid.
  EXPECT_TRUE(frontier_coverage_warnings({{1, 0.5}, {6, 0.7}}, best, cheap).empty());
  // Cheap end not covered: the cheapest point costs 3 x the cheapest worker's and is better than it.
  w = frontier_coverage_warnings({{3, 0.6}, {5, 0.8}}, best, cheap);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].find("cheap end of the frontier not covered"), std::string::npos) << w[0];
  EXPECT_NE(w[0].find("3.0 x the cheapest worker's"), std::string::npos) << w[0];
  EXPECT_NE(w[0].find("higher cost weights"), std::string::npos) << w[0];
  // Within the factor (1.2 x) or not better than the cheapest worker: no warning.
  EXPECT_TRUE(frontier_coverage_warnings({{1.2, 0.6}, {5, 0.8}}, best, cheap).empty());
  EXPECT_TRUE(frontier_coverage_warnings({{3, 0.5}, {5, 0.8}}, best, cheap).empty());
  // Both ends, in order top then cheap end.
  w = frontier_coverage_warnings({{3, 0.6}, {3.5, 0.7}}, best, cheap);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_NE(w[0].find("top"), std::string::npos);
  EXPECT_NE(w[1].find("cheap end"), std::string::npos);
  // A free cheapest worker gives no ratio: no cheap-end warning (and no division by 0).
  EXPECT_TRUE(frontier_coverage_warnings({{3, 0.6}, {5, 0.8}}, best, {0.0, 0.5}).empty());
  // One operating point is not a frontier.
  EXPECT_TRUE(frontier_coverage_warnings({{3, 0.6}}, best, cheap).empty());
}

TEST(AiqBootstrap, ConstantOutcomesGiveTheExactAiqInEveryResample) {
  // Every query of x costs 1 with quality 0.5, every query of y costs 2 with quality 0.8: any
  // resample has the same means, c_max = 2, AIQ(x) = 0.5 * (2 - 1) / 2 = 0.25, AIQ(y) = 0.
  const PointOutcomes x{{1, 1, 1}, {0.5, 0.5, 0.5}}, y{{2, 2, 2}, {0.8, 0.8, 0.8}};
  const auto b = bootstrap_aiq({{"x", {x}}, {"y", {y}}}, 50, 7);
  ASSERT_EQ(b.at("x").size(), 50u);
  for (double v : b.at("x")) EXPECT_NEAR(v, 0.25, 1e-12);
  for (double v : b.at("y")) EXPECT_NEAR(v, 0.0, 1e-12);
}

TEST(AiqBootstrap, ResamplesQueriesWithReplacement) {
  // Two queries; a's point costs 1 with qualities {0, 1}, b's costs 2 (c_max = 2 always).
  // AIQ(a) = mean quality / 2, and the resampled mean quality is 0, 1/2 or 1 with probabilities
  // 1/4, 1/2, 1/4 (two draws with replacement), so AIQ(a) is 0, 0.25 or 0.5 in those shares.
  const PointOutcomes a{{1, 1}, {0, 1}}, b{{2, 2}, {1, 1}};
  const auto r = bootstrap_aiq({{"a", {a}}, {"b", {b}}}, 4000, 11);
  int count[3] = {0, 0, 0};
  for (double v : r.at("a")) {
    const int k = static_cast<int>(std::lround(v / 0.25));
    ASSERT_NEAR(v, 0.25 * k, 1e-12);
    ASSERT_GE(k, 0);
    ASSERT_LE(k, 2);
    ++count[k];
  }
  // Seeded, so exact counts are fixed; the bounds are 5 standard deviations of a binomial.
  EXPECT_NEAR(count[0] / 4000.0, 0.25, 0.035);
  EXPECT_NEAR(count[1] / 4000.0, 0.50, 0.040);
  EXPECT_NEAR(count[2] / 4000.0, 0.25, 0.035);
}

TEST(AiqBootstrap, PairedAndDeterministic) {
  // `better` has the same costs and, query by query, at least the quality of `worse`: paired
  // resampling keeps it ahead in every resample; the same seed repeats every value.
  const PointOutcomes w1{{1, 1, 1, 1}, {0, 1, 0, 1}}, w2{{3, 3, 3, 3}, {1, 1, 0, 1}};
  const PointOutcomes b1{{1, 1, 1, 1}, {1, 1, 0, 1}}, b2{{3, 3, 3, 3}, {1, 1, 1, 1}};
  const std::map<std::string, std::vector<PointOutcomes>> fam{{"better", {b1, b2}}, {"worse", {w1, w2}}};
  const auto r = bootstrap_aiq(fam, 300, 3);
  for (std::size_t i = 0; i < 300; ++i) EXPECT_GE(r.at("better")[i], r.at("worse")[i]);
  EXPECT_EQ(r, bootstrap_aiq(fam, 300, 3));
  EXPECT_NE(r, bootstrap_aiq(fam, 300, 4));
}

TEST(AiqBootstrap, RejectsUnpairedOrEmptyInput) {
  const PointOutcomes three{{1, 1, 1}, {0, 1, 0}}, two{{1, 1}, {0, 1}};
  EXPECT_THROW(bootstrap_aiq({{"a", {three}}, {"b", {two}}}, 10, 1), Error);
  EXPECT_THROW(bootstrap_aiq({{"a", {}}}, 10, 1), Error);
  EXPECT_THROW(bootstrap_aiq({}, 10, 1), Error);
  EXPECT_THROW(bootstrap_aiq({{"a", {PointOutcomes{{1, 1}, {0}}}}}, 10, 1), Error);
  EXPECT_THROW(bootstrap_aiq({{"a", {three}}}, 0, 1), Error);
}

TEST(PooledAiqBootstrap, ResamplesRunsAndQueries) {
  // Run 1: the conductor's point costs 0 with quality 0.6 on every query, run 2: quality 0.4; the
  // router costs 0 with quality 0.5 in both, and a second router point costs 1 with quality 0.5 (so
  // c_max = 1 in every resample). AIQ = quality over [0, 1]: conductor 0.6 or 0.4 per run, router 0.5.
  // Pooled over the runs: observed difference 0; each resample draws two runs, so the mean difference
  // is +0.1 (both run 1, probability 1/4), 0 (1/2) or -0.1 (1/4): the 95% interval is [-0.1, 0.1].
  const PointOutcomes r0{{0, 0, 0}, {0.5, 0.5, 0.5}}, r1{{1, 1, 1}, {0.5, 0.5, 0.5}};
  const std::map<std::string, std::vector<PointOutcomes>> run1{{"conductor", {PointOutcomes{{0, 0, 0}, {0.6, 0.6, 0.6}}}},
                                                               {"router", {r0, r1}}};
  const std::map<std::string, std::vector<PointOutcomes>> run2{{"conductor", {PointOutcomes{{0, 0, 0}, {0.4, 0.4, 0.4}}}},
                                                               {"router", {r0, r1}}};
  std::map<std::string, double> observed;
  const auto b = pooled_bootstrap_aiq({run1, run2}, 2000, 5, &observed);
  EXPECT_NEAR(observed.at("conductor"), 0.5, 1e-12);
  EXPECT_NEAR(observed.at("router"), 0.5, 1e-12);
  int count[3] = {0, 0, 0};
  for (std::size_t i = 0; i < 2000; ++i) {
    const double d = b.at("conductor")[i] - b.at("router")[i];
    const int k = static_cast<int>(std::lround(d / 0.1)) + 1;
    ASSERT_NEAR(d, 0.1 * (k - 1), 1e-12);
    ASSERT_GE(k, 0);
    ASSERT_LE(k, 2);
    ++count[k];
  }
  EXPECT_NEAR(count[0] / 2000.0, 0.25, 0.05);
  EXPECT_NEAR(count[1] / 2000.0, 0.50, 0.06);
  EXPECT_NEAR(count[2] / 2000.0, 0.25, 0.05);
  EXPECT_EQ(b, pooled_bootstrap_aiq({run1, run2}, 2000, 5));
  // A constant advantage of 0.1 in both runs is 0.1 in every resample.
  const auto c = pooled_bootstrap_aiq({run1, run1}, 200, 6);
  for (std::size_t i = 0; i < 200; ++i) EXPECT_NEAR(c.at("conductor")[i] - c.at("router")[i], 0.1, 1e-12);
  // Runs over other queries or with other families are refused.
  const std::map<std::string, std::vector<PointOutcomes>> short_run{{"conductor", {PointOutcomes{{0, 0}, {0.4, 0.4}}}},
                                                                    {"router", {PointOutcomes{{0, 0}, {0.5, 0.5}}}}};
  EXPECT_THROW(pooled_bootstrap_aiq({run1, short_run}, 10, 1), Error);
  const std::map<std::string, std::vector<PointOutcomes>> other{{"conductor", {r0}}, {"cascade", {r0}}};
  EXPECT_THROW(pooled_bootstrap_aiq({run1, other}, 10, 1), Error);
  EXPECT_THROW(pooled_bootstrap_aiq({}, 10, 1), Error);
}

}  // namespace
}  // namespace conductor::eval
