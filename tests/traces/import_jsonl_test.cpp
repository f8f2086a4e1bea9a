// JSONL production-log importer: full-information rows and bandit decisions, a round trip through
// the HDF5 store, every kind of bad line (file, line, field, expected, got) and --skip-bad counting.
#include "traces/import_jsonl.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "tests/test_util.h"
#include "traces/store.h"

namespace conductor {
namespace {

std::string write(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// Lines 1-6. The decision on line 5 creates query q3, which has no full-information row.
const char* kLog =
    R"({"type": "model", "name": "gpt-4o", "provider": "openai", "price_in_per_mtok": 2.5, "price_out_per_mtok": 10})"
    "\n"
    R"({"type": "query", "id": "q1", "task": "math", "text": "What is 2+2?", "split": "train", "outcomes": {"gpt-4o": {"quality": 1, "cost_usd": 0.002, "latency_s": 1.5, "output_tokens": 12, "answer": 3, "error": "ok"}, "claude-3-haiku": {"quality": null, "error": "timeout", "latency_s": 30}}})"
    "\n"
    "\n"
    R"({"type": "query", "id": "q2", "task": "code", "split": "test", "input_tokens": 40, "outcomes": {"claude-3-haiku": {"quality": 0.5, "cost_usd": 0.0001, "error": 2}}, "meta": {"request": "abc"}})"
    "\n"
    R"({"type": "decision", "query_id": "q3", "task": "math", "text": "Integrate x", "split": "validation", "chosen": "claude-3-haiku", "propensity": 0.25, "quality": 0.0, "cost_usd": 0.0003, "latency_s": 0.8, "timestamp_ms": 1700000000123, "available": ["gpt-4o", "claude-3-haiku"], "policy": "router-v3"})"
    "\n"
    R"({"type": "decision", "query_id": "q1", "chosen": "gpt-4o", "propensity": 1, "available": ["gpt-4o"]})"
    "\n";

std::string import_error(const std::string& text) {
  const std::string dir = testing::temp_dir();
  const std::string p = write(dir, "log.jsonl", text);
  ImportReport report;
  try {
    import_jsonl({p}, ImportOptions{}, report);
  } catch (const Error& e) {
    const std::string msg = e.what();
    // Strip the directory so the expectations read "log.jsonl:LINE: ...".
    return msg.rfind(dir + "/", 0) == 0 ? msg.substr(dir.size() + 1) : msg;
  }
  return "(no error)";
}

TEST(JsonlImport, FullInformationRowsAndDecisions) {
  const std::string dir = testing::temp_dir();
  write(dir, "log.jsonl", kLog);
  ImportReport report;
  const TraceSet t = import_jsonl({dir}, ImportOptions{}, report);
  t.validate();
  EXPECT_EQ(report.records, 5u);  // the blank line is not a record
  ASSERT_EQ(t.n_models(), 2u);
  EXPECT_EQ(t.model_name, (std::vector<std::string>{"gpt-4o", "claude-3-haiku"}));
  EXPECT_EQ(t.model_provider, (std::vector<std::string>{"openai", "anthropic"}));
  EXPECT_EQ(t.price_in_per_mtok[0], 2.5);
  EXPECT_TRUE(std::isnan(t.price_in_per_mtok[1]));
  ASSERT_EQ(t.n_queries(), 3u);
  EXPECT_EQ(t.query_id, (std::vector<std::string>{"q1", "q2", "q3"}));
  EXPECT_EQ(t.query_task, (std::vector<std::string>{"math", "code", "math"}));
  EXPECT_EQ(t.query_text, (std::vector<std::string>{"What is 2+2?", "", "Integrate x"}));
  EXPECT_EQ(t.split, (std::vector<uint8_t>{0, 2, 1}));
  EXPECT_EQ(t.input_tokens, (std::vector<int32_t>{3, 40, 3}));  // estimated, given, estimated
  // q1 outcomes.
  EXPECT_EQ(t.quality[t.at(0, 0)], 1.0f);
  EXPECT_DOUBLE_EQ(t.cost_usd[t.at(0, 0)], 0.002);
  EXPECT_EQ(t.latency_s[t.at(0, 0)], 1.5f);
  EXPECT_EQ(t.output_tokens[t.at(0, 0)], 12);
  EXPECT_EQ(t.answer[t.at(0, 0)], 3);
  EXPECT_EQ(t.error[t.at(0, 0)], kOk);
  EXPECT_TRUE(std::isnan(t.quality[t.at(0, 1)]));
  EXPECT_EQ(t.error[t.at(0, 1)], kTimeout);
  EXPECT_EQ(t.latency_s[t.at(0, 1)], 30.0f);
  // q2: gpt-4o not run -> all missing; claude rate limited (error 2).
  EXPECT_TRUE(std::isnan(t.quality[t.at(1, 0)]));
  EXPECT_EQ(t.error[t.at(1, 0)], kErrorMissing);
  EXPECT_EQ(t.answer[t.at(1, 0)], -1);
  EXPECT_EQ(t.error[t.at(1, 1)], kRateLimited);
  // q3 has only a decision: its outcome row is missing.
  EXPECT_EQ(t.error[t.at(2, 0)], kErrorMissing);

  const Decisions& d = t.decisions;
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d.query, (std::vector<int64_t>{2, 0}));
  EXPECT_EQ(d.action, (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(d.propensity, (std::vector<double>{0.25, 1.0}));
  EXPECT_EQ(d.quality[0], 0.0f);
  EXPECT_TRUE(std::isnan(d.quality[1]));
  EXPECT_DOUBLE_EQ(d.cost_usd[0], 0.0003);
  EXPECT_TRUE(std::isnan(d.cost_usd[1]));
  EXPECT_EQ(d.latency_s[0], 0.8f);
  EXPECT_EQ(d.timestamp_ms, (std::vector<int64_t>{1700000000123, -1}));
  EXPECT_EQ(d.available, (std::vector<uint8_t>{1, 1, 1, 0}));
  EXPECT_EQ(d.policy, (std::vector<std::string>{"router-v3", ""}));
}

TEST(JsonlImport, RoundTripThroughTheStore) {
  const std::string dir = testing::temp_dir();
  write(dir, "log.jsonl", kLog);
  ImportReport report;
  const TraceSet t = import_jsonl({dir + "/log.jsonl"}, ImportOptions{}, report);
  const std::string path = dir + "/log.h5";
  write_traces(t, path);
  const TraceSet b = read_traces(path);
  EXPECT_EQ(b.model_name, t.model_name);
  EXPECT_EQ(b.model_provider, t.model_provider);
  EXPECT_EQ(b.query_id, t.query_id);
  EXPECT_EQ(b.query_task, t.query_task);
  EXPECT_EQ(b.query_text, t.query_text);
  EXPECT_EQ(b.input_tokens, t.input_tokens);
  EXPECT_EQ(b.split, t.split);
  EXPECT_EQ(b.output_tokens, t.output_tokens);
  EXPECT_EQ(b.answer, t.answer);
  EXPECT_EQ(b.error, t.error);
  for (std::size_t i = 0; i < t.quality.size(); ++i) {
    EXPECT_TRUE(b.quality[i] == t.quality[i] || (std::isnan(b.quality[i]) && std::isnan(t.quality[i]))) << i;
    EXPECT_TRUE(b.cost_usd[i] == t.cost_usd[i] || (std::isnan(b.cost_usd[i]) && std::isnan(t.cost_usd[i]))) << i;
  }
  EXPECT_EQ(b.decisions.query, t.decisions.query);
  EXPECT_EQ(b.decisions.action, t.decisions.action);
  EXPECT_EQ(b.decisions.propensity, t.decisions.propensity);
  EXPECT_EQ(b.decisions.timestamp_ms, t.decisions.timestamp_ms);
  EXPECT_EQ(b.decisions.available, t.decisions.available);
  EXPECT_EQ(b.decisions.policy, t.decisions.policy);
  EXPECT_EQ(b.decisions.quality[0], 0.0f);
}

// Every prefix of a valid log either imports or fails with a conductor::Error naming a line.
TEST(JsonlImport, TruncatedLogsFailCleanly) {
  const std::string dir = testing::temp_dir();
  const std::string full = kLog;
  for (std::size_t n = 0; n < full.size(); n += 5) {
    const std::string p = write(dir, "t.jsonl", full.substr(0, n));
    for (bool skip_bad : {false, true}) {
      ImportOptions options;
      options.skip_bad = skip_bad;
      ImportReport report;
      try {
        const TraceSet t = import_jsonl({p}, options, report);
        t.validate();
      } catch (const Error&) {
      } catch (const std::exception& e) {
        ADD_FAILURE() << "prefix " << n << ": " << e.what();
      }
    }
  }
}

TEST(JsonlImport, DecisionsOnlyLogHasNoOutcomes) {
  const std::string dir = testing::temp_dir();
  write(dir, "d.jsonl",
        R"({"type": "decision", "query_id": "a", "chosen": "m1", "propensity": 0.5, "quality": 1, "available": ["m1", "m2"]})"
        "\n");
  ImportReport report;
  const TraceSet t = import_jsonl({dir}, ImportOptions{}, report);
  t.validate();
  EXPECT_FALSE(t.has_outcomes());
  EXPECT_EQ(t.decisions.size(), 1u);
  EXPECT_EQ(t.query_task[0], "unknown");
  EXPECT_EQ(t.input_tokens[0], -1);  // neither given nor text to estimate from
  EXPECT_FALSE(t.has_text());
}

TEST(JsonlImport, BadLinesNameFileLineFieldExpectedAndGot) {
  const std::string q = R"({"type": "query", "id": "q1", "outcomes": {"m": {"quality": 1}}})";
  const std::string d = R"({"type": "decision", "query_id": "q1", "chosen": "m", "propensity": 0.5, "available": ["m"]})";
  auto second_line = [&](const std::string& line) { return import_error(q + "\n" + line + "\n"); };

  EXPECT_EQ(second_line("{\"type\": \"query\", \"id\": 5, \"outcomes\": {}}"),
            "log.jsonl:2: field 'id': expected a non-empty string, got number 5");
  EXPECT_EQ(second_line("{\"type\": \"query\", \"id\": \"q2\"}"),
            "log.jsonl:2: field 'outcomes': missing (expected an object of model -> outcome)");
  EXPECT_EQ(second_line(R"({"type": "query", "id": "q2", "outcomes": {"m": {"quality": "high"}}})"),
            "log.jsonl:2: field 'outcomes.m.quality': expected a number in [0, 1] or null, got string \"high\"");
  EXPECT_EQ(second_line(R"({"type": "query", "id": "q2", "outcomes": {"m": {"quality": 1.2}}})"),
            "log.jsonl:2: field 'outcomes.m.quality': expected a number in [0, 1] or null, got number 1.2");
  EXPECT_EQ(second_line(R"({"type": "query", "id": "q2", "outcomes": {"m": {"cost_usd": -1}}})"),
            "log.jsonl:2: field 'outcomes.m.cost_usd': expected a cost >= 0 (USD) or null, got number -1");
  EXPECT_EQ(second_line(R"({"type": "query", "id": "q2", "outcomes": {"m": {"error": "boom"}}})"),
            "log.jsonl:2: field 'outcomes.m.error': expected \"ok\", \"timeout\", \"rate_limited\", \"server_error\" or "
            "0-3, got string \"boom\"");
  EXPECT_EQ(second_line(R"({"type": "query", "id": "q2", "outcomes": {"m": {"answer": 1.5}}})"),
            "log.jsonl:2: field 'outcomes.m.answer': expected an answer class id >= 0 or null, got number 1.5");
  EXPECT_EQ(second_line(R"({"type": "query", "id": "q2", "outcomes": {"m": {"qualty": 1}}})"),
            "log.jsonl:2: field 'outcomes.m.qualty': unknown field (valid: quality, cost_usd, latency_s, output_tokens, "
            "answer, error)");
  EXPECT_EQ(second_line(R"({"type": "query", "id": "q2", "split": "dev", "outcomes": {}})"),
            "log.jsonl:2: field 'split': expected \"train\", \"validation\" or \"test\", got string \"dev\"");
  EXPECT_EQ(second_line(q), "log.jsonl:2: field 'id': duplicate query 'q1' (its outcomes are already on line 1)");
  EXPECT_EQ(second_line(R"({"type": "row"})"),
            "log.jsonl:2: field 'type': expected \"model\", \"query\", \"decision\", \"feedback\" or \"log_gap\", got string \"row\"");
  EXPECT_EQ(second_line(R"({"id": "q2"})"),
            "log.jsonl:2: field 'type': missing (expected a non-empty string)");
  EXPECT_EQ(second_line("[1, 2]"), "log.jsonl:2: expected a JSON object, got array [1,2]");
  EXPECT_EQ(second_line(R"({"type": "query", "id": "q2", "outcomes": {)").rfind("log.jsonl:2: invalid JSON (column ", 0), 0u);

  // Decisions.
  EXPECT_EQ(second_line(R"({"type": "decision", "query_id": "q1", "chosen": "m", "propensity": 0, "available": ["m"]})"),
            "log.jsonl:2: field 'propensity': expected a probability in (0, 1], got number 0");
  EXPECT_EQ(second_line(R"({"type": "decision", "query_id": "q1", "chosen": "m", "available": ["m"]})"),
            "log.jsonl:2: field 'propensity': missing (expected a probability in (0, 1])");
  EXPECT_EQ(second_line(R"({"type": "decision", "query_id": "q1", "chosen": "m", "propensity": "0.5", "available": ["m"]})"),
            "log.jsonl:2: field 'propensity': expected a probability in (0, 1], got string \"0.5\"");
  EXPECT_EQ(second_line(R"({"type": "decision", "query_id": "q1", "chosen": "m", "propensity": 0.5, "available": ["x"]})"),
            "log.jsonl:2: field 'available': expected a non-empty array of model names that includes 'chosen' ('m'), "
            "got array [\"x\"]");
  EXPECT_EQ(second_line(R"({"type": "decision", "query_id": "q1", "chosen": "m", "propensity": 0.5})"),
            "log.jsonl:2: field 'available': missing (expected a non-empty array of model names that includes 'chosen')");
  EXPECT_EQ(second_line(R"({"type": "decision", "query_id": "q1", "chosen": "m", "propensity": 0.5, "available": ["m"], "timestamp_ms": -5})"),
            "log.jsonl:2: field 'timestamp_ms': expected milliseconds since the Unix epoch (an integer >= 0) or null, "
            "got number -5");
  // Query metadata must agree across lines (the first line set no task, so "code" is fine, but
  // then "math" conflicts with it).
  {
    const std::string e = import_error(q + "\n" + R"({"type": "decision", "query_id": "q1", "task": "code", "chosen": "m", "propensity": 0.5, "available": ["m"]})" +
                                       "\n" + R"({"type": "decision", "query_id": "q1", "task": "math", "chosen": "m", "propensity": 0.5, "available": ["m"]})" + "\n");
    EXPECT_EQ(e, "log.jsonl:3: field 'task': 'math' differs from 'code' given for query 'q1' on line 2");
  }
  // A model declared twice.
  {
    const std::string m = R"({"type": "model", "name": "m", "price_in_per_mtok": 1})";
    const std::string e = import_error(m + "\n" + m + "\n");
    EXPECT_EQ(e, "log.jsonl:2: field 'name': model 'm' is already declared on line 1");
    EXPECT_EQ(import_error(R"({"type": "model", "name": "m", "price_in_per_mtok": -1})"),
              "log.jsonl:1: field 'price_in_per_mtok': expected a price >= 0 (USD per 1M tokens) or null, got number -1");
  }
  EXPECT_EQ(import_error(d + "\n").rfind("(no error)", 0), 0u);
}

TEST(JsonlImport, SkipBadSkipsCountsAndLeavesNoTrace) {
  const std::string dir = testing::temp_dir();
  const std::string p = write(dir, "log.jsonl",
                              std::string(kLog) +
                                  R"({"type": "decision", "query_id": "q9", "text": "new", "chosen": "m", "propensity": 2, "available": ["m"]})" "\n"
                                  "not json\n" +
                                  R"({"type": "query", "id": "q1", "outcomes": {}})" "\n");
  ImportOptions skip;
  skip.skip_bad = true;
  ImportReport report;
  const TraceSet t = import_jsonl({p}, skip, report);
  t.validate();
  EXPECT_EQ(report.records, 8u);
  EXPECT_EQ(report.skipped, 3u);
  ASSERT_EQ(report.skipped_examples.size(), 3u);
  EXPECT_EQ(report.skipped_examples[0], p + ":7: field 'propensity': expected a probability in (0, 1], got number 2");
  EXPECT_EQ(report.skipped_examples[1].rfind(p + ":8: invalid JSON", 0), 0u);
  EXPECT_EQ(report.skipped_examples[2].rfind(p + ":9: field 'id': duplicate query 'q1'", 0), 0u);
  // The skipped decision created neither its query q9 nor its model m.
  EXPECT_EQ(t.n_queries(), 3u);
  EXPECT_EQ(t.n_models(), 2u);
  EXPECT_EQ(t.decisions.size(), 2u);
  // Without --skip-bad the first bad line stops the import.
  ImportReport strict;
  EXPECT_THROW(import_jsonl({p}, ImportOptions{}, strict), Error);
}

}  // namespace
}  // namespace conductor

namespace conductor {
namespace {

// Serving logs (`conductor serve --log-dir`, docs/production.md): decision rows with the server's
// extra fields, feedback rows joined by request id (the last label wins), log gaps reported, and a
// last line cut short by a kill skipped and reported instead of failing the import.
TEST(ImportJsonl, ServingLogsJoinFeedbackAndSkipACutLastLine) {
  const std::string dir = testing::temp_dir() + "/serving-logs";
  std::filesystem::create_directories(dir);
  const std::string a =
      R"({"type":"decision","request_id":"req_1","endpoint":"chat","timestamp_ms":1700000000000,"query_id":"q1","text":"2+2?","input_tokens":3,"available":["m1","m2"],"policy":"v1","exploration":"epsilon:0.1","max_steps":2,"chosen":"m2","propensity":0.05,"steps":[{"action":"call:m2","propensity":0.05,"error":"ok","output_tokens":1,"answer":4,"cost_usd":0.001,"latency_s":0.5},{"action":"finish:last","propensity":0.9}],"cost_usd":0.001,"latency_s":0.5,"answered_by":"m2","status":200})"
      "\n"
      R"({"type":"feedback","request_id":"req_1","quality":0.5,"timestamp_ms":1700000000100,"source":"user"})"
      "\n"
      R"({"type":"decision","request_id":"req_2","endpoint":"route","timestamp_ms":1700000000200,"query_id":"q2","input_tokens":5,"available":["m1"],"policy":"v1","exploration":"epsilon:0.1","max_steps":2,"chosen":"m1","propensity":1,"steps":[{"action":"call:m1","propensity":1}],"status":200})"
      "\n"
      R"({"type":"log_gap","dropped":3,"timestamp_ms":1700000000300})"
      "\n"
      R"({"type":"feedback","request_id":"req_1","quality":1,"timestamp_ms":1700000000400})"
      "\n"
      R"({"type":"feedback","request_id":"req_9","quality":1,"timestamp_ms":1700000000500})"
      "\n";
  write(dir, "decisions-1.jsonl", a);
  write(dir, "decisions-2.jsonl",
        std::string(R"({"type":"decision","request_id":"req_3","query_id":"q1","available":["m1","m2"],"chosen":"m1","propensity":0.95})") +
            "\n" + R"({"type":"decision","request_id":"req_4","query_id":"q)");
  ImportReport rep;
  const TraceSet t = import_jsonl({dir}, {}, rep);
  ASSERT_EQ(t.decisions.size(), 3u);
  EXPECT_EQ(t.decisions.quality[0], 1.0f);  // the later label of req_1
  EXPECT_TRUE(std::isnan(t.decisions.quality[1]));
  EXPECT_TRUE(std::isnan(t.decisions.quality[2]));
  EXPECT_EQ(t.decisions.propensity[0], 0.05);
  EXPECT_EQ(t.model_name[t.decisions.action[0]], "m2");
  EXPECT_EQ(t.decisions.cost_usd[0], 0.001);
  EXPECT_EQ(t.n_queries(), 2u);
  EXPECT_EQ(rep.records, 7u);  // the cut line is not a record
  std::string notes;
  for (const auto& n : rep.notes) notes += n + "\n";
  EXPECT_NE(notes.find("1 incomplete last line(s) skipped"), std::string::npos) << notes;
  EXPECT_NE(notes.find("decisions-2.jsonl:2"), std::string::npos) << notes;
  EXPECT_NE(notes.find("feedback: 3 row(s) for 2 request(s); 1 joined to their decision, 1 name a request id with no "
                       "decision in the input"),
            std::string::npos)
      << notes;
  EXPECT_NE(notes.find("3 row(s) dropped by the server"), std::string::npos) << notes;

  // A bad line in the middle of a file is still an error; so are a duplicate request id and a
  // malformed feedback row.
  const std::string bad = testing::temp_dir() + "/serving-bad";
  std::filesystem::create_directories(bad);
  const std::string d1 = R"({"type":"decision","request_id":"r","query_id":"q","available":["m"],"chosen":"m","propensity":1})";
  auto err = [&](const std::string& text) {
    write(bad, "x.jsonl", text);
    ImportReport r;
    try {
      import_jsonl({bad + "/x.jsonl"}, {}, r);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(err(d1 + "\n{\"type\": \"dec\n" + d1 + "\n").find("x.jsonl:2: invalid JSON"), std::string::npos);
  EXPECT_NE(err(d1 + "\n" + d1 + "\n").find("x.jsonl:2: field 'request_id': duplicate request 'r' (also on line 1)"),
            std::string::npos)
      << err(d1 + "\n" + d1 + "\n");
  EXPECT_NE(err(d1 + "\n" + R"({"type":"feedback","request_id":"r","quality":2})" + "\n")
                .find("x.jsonl:2: field 'quality': expected a number in [0, 1], got number 2"),
            std::string::npos);
  EXPECT_NE(err(d1 + "\n" + R"({"type":"feedback","request_id":"r"})" + "\n").find("field 'quality': missing"),
            std::string::npos);
}

}  // namespace
}  // namespace conductor
