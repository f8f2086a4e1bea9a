// Bad-input table of the HTTP surface (issue 27): every body or request that `conductor serve`
// must refuse, with the status and a substring of the error message it must answer. The server
// keeps serving throughout; no bad input may give a 500. A new field or endpoint gets a row here
// (docs/bad-inputs.md counts the rows).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/serve/serve_fixtures.h"
#include "tests/test_util.h"

namespace conductor::serve {
namespace {

struct Row {
  std::string method, path, body;
  int status;
  std::string needle;
};

// `fixed`: a policy trained for one cost weight; `conditioned`: one trained on w_cost in [3, 3000].
std::vector<Row> route_rows(const std::string& w0, const std::string& task) {
  const std::string q = R"({"query": "q", )";
  return {
      {"POST", "/v1/route", "{not json", 400, "request body is not valid JSON (byte 3)"},
      {"POST", "/v1/route", "", 400, "request body is not valid JSON"},
      {"POST", "/v1/route", R"({"query": "q")", 400, "request body is not valid JSON"},
      {"POST", "/v1/route", "[1,2]", 400, "request body must be a JSON object, got an array"},
      {"POST", "/v1/route", R"("text")", 400, "request body must be a JSON object, got a string"},
      {"POST", "/v1/route", "null", 400, "request body must be a JSON object, got null"},
      {"POST", "/v1/route", "1e999", 400, "the request body: number 1e999 is out of range"},
      {"POST", "/v1/route", "{}", 400, "missing field 'query' (a string)"},
      {"POST", "/v1/route", R"({"budget_usd": 1})", 400, "missing field 'query'"},
      {"POST", "/v1/route", R"({"query": 5})", 400, "'query' must be a string, got an integer"},
      {"POST", "/v1/route", R"({"query": null})", 400, "'query' must be a string, got null"},
      {"POST", "/v1/route", R"({"query": ["a"]})", 400, "'query' must be a string, got an array"},
      {"POST", "/v1/route", R"({"query": ""})", 400, "'query' must be a non-empty string"},
      {"POST", "/v1/route", R"({"query": "  \n "})", 400, "'query' must be a non-empty string"},
      {"POST", "/v1/route", q + R"("task": "no-such-task"})", 400, "'task': unknown task 'no-such-task' (the policy knows: "},
      {"POST", "/v1/route", q + R"("task": ")" + task + "x\"}", 400, "'task': unknown task '" + task + "x'"},
      {"POST", "/v1/route", q + R"("task": 3})", 400, "'task' must be a string, got an integer"},
      {"POST", "/v1/route", q + R"("available": "all"})", 400, "'available' must be an array of worker names, got a string"},
      {"POST", "/v1/route", q + R"("available": []})", 400, "'available' must name at least one worker"},
      {"POST", "/v1/route", q + R"("available": [3]})", 400, "'available[0]' must be a string, got an integer"},
      {"POST", "/v1/route", q + R"("available": [")" + w0 + R"(", 7]})", 400, "'available[1]' must be a string"},
      {"POST", "/v1/route", q + R"("available": ["nope"]})", 400, "'available[0]': unknown worker 'nope' (known: "},
      {"POST", "/v1/route", q + R"("available": [")" + w0 + R"(", ")" + w0 + R"("]})", 400,
       "'available' names worker '" + w0 + "' twice"},
      {"POST", "/v1/route", q + R"("budget_usd": "cheap"})", 400, "'budget_usd' must be a number, got a string"},
      {"POST", "/v1/route", q + R"("budget_usd": true})", 400, "'budget_usd' must be a number, got a boolean"},
      {"POST", "/v1/route", q + R"("budget_usd": -1})", 400, "'budget_usd' must be a finite number >= 0, got -1"},
      {"POST", "/v1/route", q + R"("budget_usd": 1e999})", 400, "'budget_usd': number 1e999 is out of range"},
      {"POST", "/v1/route", q + R"("budget_usd": 0})", 422, "over the budget"},
      {"POST", "/v1/route", q + R"("cost_weight": 30})", 400, "'cost_weight' needs a cost-conditioned policy"},
      {"POST", "/v1/route", q + R"("cost_weight": 1e999})", 400, "'cost_weight': number 1e999 is out of range"},
      {"POST", "/v1/route", q + R"("price_factors": 2})", 400, "'price_factors' must be an object"},
      {"POST", "/v1/route", q + R"("price_factors": {"nope": 2}})", 400, "'price_factors': unknown worker 'nope'"},
      {"POST", "/v1/route", q + R"("price_factors": {")" + w0 + R"(": -1}})", 400,
       "'price_factors." + w0 + "' must be a number in [0, 1e6]"},
      {"POST", "/v1/route", q + R"("price_factors": {")" + w0 + R"(": 1e7}})", 400,
       "'price_factors." + w0 + "' must be a number in [0, 1e6]"},
      {"POST", "/v1/route", q + R"("price_factors": {")" + w0 + R"(": "x"}})", 400,
       "'price_factors." + w0 + "' must be a number in [0, 1e6]"},
      {"POST", "/v1/route", q + R"("price_factors": {")" + w0 + R"(": 1e999}})", 400,
       "'price_factors." + w0 + "': number 1e999 is out of range"},
      {"POST", "/v1/route", q + R"("input_tokens": 1.5})", 400, "'input_tokens' must be an integer in [0, 2^30], got 1.5"},
      {"POST", "/v1/route", q + R"("input_tokens": -1})", 400, "'input_tokens' must be an integer in [0, 2^30], got -1"},
      {"POST", "/v1/route", q + R"("input_tokens": 2000000000})", 400, "'input_tokens' must be an integer in [0, 2^30]"},
      {"POST", "/v1/route", q + R"("input_tokens": "12"})", 400, "'input_tokens' must be an integer in [0, 2^30]"},
      {"POST", "/v1/route", q + R"("input_tokens": 1e999})", 400, "'input_tokens': number 1e999 is out of range"},
      {"POST", "/v1/route", q + R"("query_id": ""})", 400, "'query_id' must be a non-empty string of at most 256 bytes"},
      {"POST", "/v1/route", q + R"("query_id": 5})", 400, "'query_id' must be a non-empty string of at most 256 bytes"},
      {"POST", "/v1/route", q + R"("query_id": ")" + std::string(300, 'x') + "\"}", 400, "at most 256 bytes"},
      {"POST", "/v1/route", q + R"("temperature": 1})", 400, "unknown field 'temperature' (expected query, query_id"},
      {"POST", "/v1/route", q + R"("x": [1, 2, 1e999]})", 400, "'x[2]': number 1e999 is out of range"},
      {"POST", "/v1/route", q + R"("x": {"y": [{"z": -1e999}]}})", 400, "'x.y[0].z': number -1e999 is out of range"},
      {"GET", "/v1/route", "", 405, "method GET not allowed on /v1/route (use POST)"},
      {"POST", "/healthz", "{}", 405, "method POST not allowed on /healthz (use GET)"},
      {"POST", "/v2/anything", "{}", 404, "no such endpoint: POST /v2/anything"},
      {"POST", "/v1/chat/completions", "{}", 404, "the chat gateway is not configured"},
  };
}

std::vector<Row> feedback_rows() {
  const std::string r = R"({"request_id": "r1", )";
  return {
      {"POST", "/v1/feedback", "{bad", 400, "request body is not valid JSON (byte 2)"},
      {"POST", "/v1/feedback", "[]", 400, "feedback must be a JSON object {request_id, quality, source?}"},
      {"POST", "/v1/feedback", R"({"quality": 1})", 400, "'request_id' must be the non-empty request id"},
      {"POST", "/v1/feedback", R"({"request_id": "", "quality": 1})", 400, "'request_id' must be the non-empty request id"},
      {"POST", "/v1/feedback", R"({"request_id": 5, "quality": 1})", 400, "'request_id' must be the non-empty request id"},
      {"POST", "/v1/feedback", R"({"request_id": "r1"})", 400, "'quality' must be a number in [0, 1], got nothing"},
      {"POST", "/v1/feedback", r + R"("quality": "good"})", 400, "'quality' must be a number in [0, 1], got \"good\""},
      {"POST", "/v1/feedback", r + R"("quality": true})", 400, "'quality' must be a number in [0, 1], got true"},
      {"POST", "/v1/feedback", r + R"("quality": null})", 400, "'quality' must be a number in [0, 1], got null"},
      {"POST", "/v1/feedback", r + R"("quality": 1.5})", 400, "'quality' must lie in [0, 1], got 1.5"},
      {"POST", "/v1/feedback", r + R"("quality": -0.1})", 400, "'quality' must lie in [0, 1], got -0.1"},
      {"POST", "/v1/feedback", r + R"("quality": 1e999})", 400, "'quality': number 1e999 is out of range"},
      {"POST", "/v1/feedback", r + R"("quality": 1, "source": 5})", 400, "'source' must be a string of at most 64 bytes"},
      {"POST", "/v1/feedback", r + R"("quality": 1, "source": ")" + std::string(65, 's') + "\"}", 400,
       "'source' must be a string of at most 64 bytes"},
      {"POST", "/v1/feedback", r + R"("quality": 1, "extra": 1})", 400, "unknown field 'extra' (expected request_id, quality, source)"},
      {"POST", "/v1/feedback", r + R"("quality": 1})", 404, "decision logging is off"},
      {"GET", "/v1/feedback", "", 405, "method GET not allowed on /v1/feedback"},
  };
}

std::vector<Row> conditioned_rows() {
  const std::string q = R"({"query": "q", )";
  return {
      {"POST", "/v1/route", q + R"("cost_weight": 1})", 400, "'cost_weight' must lie in [3.0, 3000.0] (the range the policy was trained on), got 1"},
      {"POST", "/v1/route", q + R"("cost_weight": 1e6})", 400, "'cost_weight' must lie in [3.0, 3000.0]"},
      {"POST", "/v1/route", q + R"("cost_weight": -5})", 400, "'cost_weight' must lie in [3.0, 3000.0]"},
      {"POST", "/v1/route", q + R"("cost_weight": "high"})", 400, "'cost_weight' must be a number, got a string"},
      {"POST", "/v1/route", q + R"("cost_weight": -1e999})", 400, "'cost_weight': number -1e999 is out of range"},
  };
}

// Sends every row; each must get its status and a JSON error whose message holds the needle.
int check_rows(int port, const std::vector<Row>& rows) {
  int checked = 0;
  for (const Row& row : rows) {
    const auto r = row.method == "GET" ? testing::get(port, row.path) : testing::post(port, row.path, row.body);
    const std::string what = row.method + " " + row.path + " " + row.body.substr(0, 120);
    EXPECT_EQ(r.status, row.status) << what << " -> " << r.body;
    const json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("error") || !j["error"].contains("message")) {
      ADD_FAILURE() << what << " -> not a JSON error: " << r.body;
      continue;
    }
    EXPECT_NE(j["error"]["message"].get<std::string>().find(row.needle), std::string::npos)
        << what << "\n  expected: " << row.needle << "\n  got:      " << r.body;
    ++checked;
  }
  return checked;
}

TEST(BadHttpBodies, EveryRowGetsItsStatusAndAClearMessage) {
  const std::string dir = conductor::testing::temp_dir();
  auto fixed = testing::serve_export(200, 3, dir + "/fixed");
  const std::string w0 = fixed->t.live->workers().at(0);
  ASSERT_FALSE(fixed->t.live->tasks().empty());
  const std::string task = fixed->t.live->tasks().at(0);
  int rows = check_rows(fixed->port(), route_rows(w0, task));
  rows += check_rows(fixed->port(), feedback_rows());
  auto conditioned = testing::serve_export(200, 3, dir + "/conditioned",
                                           "reward: {w_cost: 30, w_cost_range: [3, 3000]}\n");
  rows += check_rows(conditioned->port(), conditioned_rows());
  EXPECT_EQ(rows, 51 + 17 + 5);  // docs/bad-inputs.md
  // The server is still up, and the good forms of the refused fields work.
  const auto ok = testing::post(fixed->port(), "/v1/route", R"({"query": "still serving?", "task": ")" + task + "\"}");
  EXPECT_EQ(ok.status, 200) << ok.body;
  const auto ok2 = testing::post(conditioned->port(), "/v1/route", R"({"query": "q", "cost_weight": 300})");
  EXPECT_EQ(ok2.status, 200) << ok2.body;
}

}  // namespace
}  // namespace conductor::serve
