// `traces info` numbers on a hand-made trace set; every expected value is worked out in the comments.
#include "traces/info.h"

#include <gtest/gtest.h>

#include <cmath>

namespace conductor {
namespace {

// 4 queries (train, train, test, test) x 2 models (a, b), plus 3 decisions.
TraceSet tiny() {
  TraceSet t;
  t.source = "hand-made";
  t.model_name = {"a", "b"};
  t.model_provider = {"openai", "meta"};
  t.price_in_per_mtok = {1.0, std::nan("")};
  t.price_out_per_mtok = {2.0, std::nan("")};
  t.query_id = {"q0", "q1", "q2", "q3"};
  t.query_task = {"math", "code", "math", "math"};
  t.input_tokens = {10, 20, 30, 40};
  t.split = {0, 0, 2, 2};
  t.allocate_outcomes();
  //            q0 a   q0 b   q1 a   q1 b   q2 a   q2 b   q3 a   q3 b
  t.quality = {1.0f, 0.0f, 0.5f, kMissingF, 1.0f, 0.25f, kMissingF, 0.75f};
  t.cost_usd = {0.1, 0.01, 0.3, kMissingD, 0.2, 0.02, 0.4, 0.04};
  t.latency_s = {1.0f, 2.0f, 3.0f, kMissingF, 5.0f, kMissingF, 7.0f, 8.0f};
  t.error = {kOk, kOk, kOk, kErrorMissing, kOk, kOk, kTimeout, kOk};
  Decisions& d = t.decisions;
  d.query = {0, 2, 3};
  d.action = {0, 1, 1};
  d.propensity = {0.5, 0.5, 1.0};
  d.quality = {1.0f, 0.25f, kMissingF};
  d.cost_usd = {0.1, 0.02, 0.04};
  d.latency_s = {1.0f, 5.0f, 8.0f};
  d.timestamp_ms = {1, 2, 3};
  d.available = {1, 1, 1, 1, 0, 1};
  d.policy = {"p", "p", "p"};
  t.validate();
  return t;
}

TEST(Info, AllSplits) {
  const TraceSummary s = summarize_traces(tiny(), std::nullopt);
  EXPECT_EQ(s.queries, 4u);
  EXPECT_EQ(s.queries_total, 4u);
  EXPECT_EQ(s.per_split[0], 2u);
  EXPECT_EQ(s.per_split[1], 0u);
  EXPECT_EQ(s.per_split[2], 2u);
  EXPECT_EQ(s.decisions, 3u);
  EXPECT_EQ(s.tasks.at("math"), 3u);
  EXPECT_EQ(s.tasks.at("code"), 1u);
  const ModelSummary& a = s.per_model[0];
  // a: quality {1, 0.5, 1, -} -> 2.5 / 3; cost {0.1, 0.3, 0.2, 0.4} -> 0.25; latency {1, 3, 5, 7} -> 4;
  // quality missing on 1 of 4; errors: 1 timeout among 4 logged calls.
  EXPECT_DOUBLE_EQ(a.quality, 2.5 / 3.0);
  EXPECT_DOUBLE_EQ(a.cost_usd, 0.25);
  EXPECT_DOUBLE_EQ(a.latency_s, 4.0);
  EXPECT_DOUBLE_EQ(a.missing, 0.25);
  EXPECT_DOUBLE_EQ(a.error_rate, 0.25);
  EXPECT_EQ(a.logged, 3u);
  EXPECT_EQ(a.decisions, 1u);
  EXPECT_DOUBLE_EQ(a.decision_quality, 1.0);
  const ModelSummary& b = s.per_model[1];
  // b: quality {0, -, 0.25, 0.75} -> 1 / 3; cost {0.01, -, 0.02, 0.04} -> 0.07 / 3; latency {2, -, -, 8} -> 5.
  EXPECT_DOUBLE_EQ(b.quality, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(b.cost_usd, 0.07 / 3.0);
  EXPECT_DOUBLE_EQ(b.latency_s, 5.0);
  EXPECT_DOUBLE_EQ(b.missing, 0.25);
  EXPECT_DOUBLE_EQ(b.error_rate, 0.0);
  EXPECT_EQ(b.decisions, 2u);
  EXPECT_DOUBLE_EQ(b.decision_quality, 0.25);  // the NaN quality of decision 2 is ignored
}

TEST(Info, TestSplitAndJson) {
  const TraceSummary s = summarize_traces(tiny(), Split::kTest);
  EXPECT_EQ(s.queries, 2u);
  EXPECT_EQ(s.decisions, 2u);
  // a on q2, q3: quality {1, -} -> 1; cost {0.2, 0.4} -> 0.3; latency {5, 7} -> 6; missing 1/2.
  EXPECT_DOUBLE_EQ(s.per_model[0].quality, 1.0);
  EXPECT_DOUBLE_EQ(s.per_model[0].cost_usd, 0.30000000000000004);  // (0.2 + 0.4) / 2 in doubles
  EXPECT_DOUBLE_EQ(s.per_model[0].latency_s, 6.0);
  EXPECT_DOUBLE_EQ(s.per_model[0].missing, 0.5);
  EXPECT_DOUBLE_EQ(s.per_model[0].error_rate, 0.5);
  // b on q2, q3: quality {0.25, 0.75} -> 0.5; latency {-, 8} -> 8.
  EXPECT_DOUBLE_EQ(s.per_model[1].quality, 0.5);
  EXPECT_DOUBLE_EQ(s.per_model[1].latency_s, 8.0);

  const json j = summary_to_json(s);
  EXPECT_EQ(j["queries"], 2);
  EXPECT_EQ(j["models"], json::array({"a", "b"}));
  EXPECT_EQ(j["split"], "test");
  EXPECT_EQ(j["splits"]["train"], 2);
  EXPECT_EQ(j["decisions"], 2);
  EXPECT_DOUBLE_EQ(j["per_model"]["a"]["quality"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["per_model"]["b"]["cost_usd"].get<double>(), 0.03);
  EXPECT_DOUBLE_EQ(j["per_model"]["b"]["missing"].get<double>(), 0.0);
  EXPECT_TRUE(j["per_model"]["b"]["price_in_per_mtok"].is_null());  // NaN -> null
  EXPECT_EQ(j["per_model"]["a"]["price_out_per_mtok"], 2.0);
  // The JSON text has no NaN tokens (nlohmann would print null anyway; the summary makes it explicit).
  EXPECT_EQ(j.dump().find("NaN"), std::string::npos);
}

TEST(Info, EverythingMissingGivesNull) {
  TraceSet t = tiny();
  t.latency_s.assign(t.latency_s.size(), kMissingF);
  const json j = summary_to_json(summarize_traces(t, Split::kValidation));  // an empty split
  EXPECT_EQ(j["queries"], 0);
  EXPECT_TRUE(j["per_model"]["a"]["quality"].is_null());
  EXPECT_TRUE(j["per_model"]["a"]["latency_s"].is_null());
  EXPECT_TRUE(j["per_model"]["a"]["missing"].is_null());
  const json all = summary_to_json(summarize_traces(t, std::nullopt));
  EXPECT_TRUE(all["per_model"]["b"]["latency_s"].is_null());
}

TEST(Info, TableListsEveryModelAligned) {
  const std::string table = summary_table(summarize_traces(tiny(), std::nullopt));
  EXPECT_NE(table.find("queries:   4 (train 2, validation 0, test 2)"), std::string::npos) << table;
  EXPECT_NE(table.find("a      openai          0.8333     0.250000      4.000     25.0%    25.0%          1"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("b      meta            0.3333     0.023333      5.000     25.0%     0.0%          2"),
            std::string::npos)
      << table;
}

}  // namespace
}  // namespace conductor
