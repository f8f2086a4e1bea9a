// Baselines on a hand-built full-information table (values computed by hand in the comments).
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "eval/baselines.h"
#include "world/replay_table.h"

namespace conductor::eval {
namespace {

// Workers cheap (cost 1), mid (cost 2), expensive (cost 10); 4 test queries of rising difficulty
// plus one test query with a missing quality cell, and 2 training queries.
TraceSet tiny_traces() {
  TraceSet t;
  t.source = "baselines_test";
  t.model_name = {"cheap", "mid", "expensive"};
  t.model_provider = {"a", "b", "c"};
  t.price_in_per_mtok = {1, 2, 10};
  t.price_out_per_mtok = {1, 2, 10};
  for (int q = 0; q < 7; ++q) {
    t.query_id.push_back("q" + std::to_string(q));
    t.query_task.push_back("task");
    t.input_tokens.push_back(10);
    t.split.push_back(q < 5 ? 2 : 0);
  }
  t.allocate_outcomes();
  const float qual[7][3] = {{1, 1, 1}, {0, 1, 1}, {0, 0, 1}, {0, 0, 0}, {1, kMissingF, 1}, {1, 1, 1}, {0, 1, 1}};
  const double cost[3] = {1, 2, 10};
  for (int q = 0; q < 7; ++q)
    for (int m = 0; m < 3; ++m) {
      const auto k = t.at(q, m);
      t.quality[k] = qual[q][m];
      t.cost_usd[k] = cost[m];
      t.latency_s[k] = static_cast<float>(m + 1);
      t.answer[k] = qual[q][m] == 1 ? 0 : 1 + m;  // correct answers agree, wrong ones differ
      t.error[k] = kOk;
    }
  return t;
}

TEST(ReplayTable, DropsIncompleteRowsAndNamesEmptySplits) {
  const auto t = tiny_traces();
  const auto table = ReplayTable::build(t, Split::kTest);
  EXPECT_EQ(table.n_queries(), 4u);
  EXPECT_EQ(table.dropped_queries, 1u);
  EXPECT_EQ(table.query_index, (std::vector<std::size_t>{0, 1, 2, 3}));
  EXPECT_EQ(table.mean_quality(), (std::vector<double>{0.25, 0.5, 0.75}));
  try {
    ReplayTable::build(t, Split::kValidation);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("split 'validation' has no queries"), std::string::npos) << e.what();
  }
}

TEST(ReplayTable, MissingLatencyNeedsAFill) {
  auto t = tiny_traces();
  for (auto& l : t.latency_s) l = kMissingF;
  EXPECT_THROW(ReplayTable::build(t, Split::kTest), Error);
  const auto table = ReplayTable::build(t, Split::kTest, [](std::size_t, std::size_t m) { return 0.5 * m; });
  EXPECT_EQ(table.filled_latencies, 12u);
  EXPECT_DOUBLE_EQ(table.latency_s[table.at(1, 2)], 1.0);
}

TEST(Baselines, SingleOracleRandom) {
  const auto table = ReplayTable::build(tiny_traces(), Split::kTest);
  const auto exp = summarize(run_single(table, 2), 3, 2);
  EXPECT_DOUBLE_EQ(exp.quality, 0.75);
  EXPECT_DOUBLE_EQ(exp.cost_usd, 10.0);
  EXPECT_DOUBLE_EQ(exp.latency_p50_s, 3.0);
  // Oracle: q0 cheap (1), q1 mid (2), q2 expensive (10), q3 nobody is right -> cheapest (1).
  const auto oracle = summarize(run_oracle(table), 3, 2);
  EXPECT_DOUBLE_EQ(oracle.quality, 0.75);
  EXPECT_DOUBLE_EQ(oracle.cost_usd, 3.5);
  EXPECT_DOUBLE_EQ(oracle.call_share[0], 0.5);
  // Random is seeded: same seed, same choices.
  const auto a = run_random(table, 7), b = run_random(table, 7);
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].calls, b[i].calls);
}

TEST(Baselines, RouterTradesPredictedQualityAgainstCost) {
  const auto table = ReplayTable::build(tiny_traces(), Split::kTest);
  Predictions p;
  // Predicted quality 0.5 / 0.7 / 0.9 everywhere, costs 1 / 2 / 10.
  for (std::size_t r = 0; r < 4; ++r)
    for (double v : {0.5, 0.7, 0.9}) p.quality.push_back(v);
  for (std::size_t r = 0; r < 4; ++r)
    for (double c : {1.0, 2.0, 10.0}) p.cost_usd.push_back(c);
  // w = 0: best predicted quality (expensive). w = 0.1: utilities .4, .5, -.1 -> mid. w = 1: cheap.
  EXPECT_EQ(run_router(table, p, 0.0)[0].calls, std::vector<int>{2});
  EXPECT_EQ(run_router(table, p, 0.1)[0].calls, std::vector<int>{1});
  EXPECT_EQ(run_router(table, p, 1.0)[0].calls, std::vector<int>{0});
}

TEST(Baselines, ParetoChainAndCascadeExtremes) {
  EXPECT_EQ(pareto_chain({0.5, 0.4, 0.9, 0.7}, {1, 2, 10, 3}), (std::vector<int>{0, 3, 2}));
  const auto t = tiny_traces();
  const auto train = ReplayTable::build(t, Split::kTrain);
  const auto test = ReplayTable::build(t, Split::kTest);
  Predictions ptrain{std::vector<double>(train.quality.size(), 0.6), std::vector<double>(train.quality.size(), 1.0)};
  Predictions ptest{std::vector<double>(test.quality.size(), 0.6), std::vector<double>(test.quality.size(), 1.0)};
  const auto cascade = Cascade::fit(train, ptrain, {0, 1, 2});
  // Threshold 0: every first answer is confident enough -> the cheap worker alone.
  const auto first = summarize(cascade.run(test, ptest, 0.0), 3, 2);
  EXPECT_DOUBLE_EQ(first.quality, 0.25);
  EXPECT_DOUBLE_EQ(first.cost_usd, 1.0);
  // Threshold above 1: never confident -> the whole chain, answer of the last worker.
  const auto all = summarize(cascade.run(test, ptest, 1.01), 3, 2);
  EXPECT_DOUBLE_EQ(all.quality, 0.75);
  EXPECT_DOUBLE_EQ(all.cost_usd, 13.0);
  EXPECT_DOUBLE_EQ(all.calls_per_query, 3.0);
  EXPECT_DOUBLE_EQ(all.latency_p50_s, 6.0);
}

}  // namespace
}  // namespace conductor::eval
