// `conductor serve` end to end on loopback: export -> load -> serve -> /v1/route, request
// validation, /healthz and /metrics.
#include "serve/service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "policies/export.h"
#include "tests/serve/serve_fixtures.h"
#include "tests/test_util.h"

namespace conductor::serve {
namespace {

using testing::get;
using testing::post;
using testing::RawClient;

using testing::Served;
using testing::serve_export;

json route_body(const ConductorStateView& v, const std::vector<std::string>& workers) {
  json avail = json::array();
  for (int k = 0; k < v.n_workers; ++k)
    if (v.pool[k]) avail.push_back(workers[k]);
  return {{"query", std::string(v.text)}, {"task", std::string(v.task)}, {"input_tokens", v.input_tokens},
          {"available", avail}};
}

TEST(Serve, RouteOverHttpEqualsInProcessDecisionsFor1000TestQueries) {
  auto s = serve_export(5000, 3, conductor::testing::temp_dir() + "/export");
  const int n = 1000;
  ASSERT_GE(static_cast<int>(s->t.world->split_queries.size()), n);
  // In process: the environment's own first observations, the policy built from the tensors in memory.
  ConductorEnv env(s->t.config, s->t.world, n);
  env.reset(0);
  const MlpSpec spec = testing::mlp_spec_for(*s->t.live);
  auto policy = make_mlp_policy(spec, testing::random_mlp_tensors(spec, 42, 0.3));
  std::vector<int32_t> expected(n);
  policy->act(env.observations(), ActOptions{}, expected.data(), nullptr);
  std::set<int> distinct(expected.begin(), expected.end());
  EXPECT_GE(distinct.size(), 2u) << "a policy that always picks the same action makes this test weak";

  int same = 0;
  for (int i = 0; i < n; ++i) {
    const ConductorStateView v = env.state_view(i);
    auto r = post(s->port(), "/v1/route", route_body(v, s->t.live->workers()).dump());
    ASSERT_EQ(r.status, 200) << r.body;
    const json j = json::parse(r.body);
    same += j["action"]["index"].get<int>() == expected[i];
    EXPECT_EQ(j["action"]["index"].get<int>(), expected[i]) << "query " << v.query << ": " << j.dump();
    if (i == 0) {
      EXPECT_EQ(j["model_version"], s->loaded.model_version);
      double total = 0;
      for (const auto& [name, p] : j["probabilities"].items()) total += p.get<double>();
      EXPECT_NEAR(total, 1.0, 1e-5);
      EXPECT_EQ(j["max_steps"], 3);
      EXPECT_EQ(j["plan"].size(), 1u);
    }
  }
  EXPECT_EQ(same, n);
}

TEST(Serve, OneStepPolicyReturnsTheWholePlan) {
  auto s = serve_export(200, 1, conductor::testing::temp_dir() + "/export");
  auto r = post(s->port(), "/v1/route", R"({"query": "Prove that the sum of two even numbers is even."})");
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  EXPECT_TRUE(j["plan_complete"].get<bool>());
  EXPECT_EQ(j["action"]["kind"], "call");  // nothing to finish with at the first step
}

TEST(Serve, InvalidRequestsGetClear4xxJsonErrors) {
  auto s = serve_export(200, 3, conductor::testing::temp_dir() + "/export");
  const std::string w0 = s->t.live->workers()[0];
  struct Case {
    std::string body;
    int status;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {"{not json", 400, "not valid JSON"},
      {"", 400, "not valid JSON"},
      {"[1,2]", 400, "must be a JSON object"},
      {R"({"available": []})", 400, "'available' must name at least one worker"},
      {R"({"available": ["x"]})", 400, "unknown worker 'x'"},
      {R"({"budget_usd": 1})", 400, "missing field 'query'"},
      {R"({"query": 5})", 400, "'query' must be a string"},
      {R"({"query": "q", "available": "all"})", 400, "'available' must be an array"},
      {R"({"query": "q", "available": [3]})", 400, "'available[0]' must be a string"},
      {R"({"query": "q", "available": ["nope"]})", 400, "unknown worker 'nope'"},
      {R"({"query": "q", "available": [")" + w0 + R"(", ")" + w0 + R"("]})", 400, "twice"},
      {R"({"query": "q", "budget_usd": "cheap"})", 400, "'budget_usd' must be a number"},
      {R"({"query": "q", "budget_usd": -1})", 400, ">= 0"},
      {R"({"query": "q", "input_tokens": 1.5})", 400, "input_tokens"},
      {R"({"query": "q", "temperature": 1})", 400, "unknown field 'temperature'"},
      {R"({"query": "q", "budget_usd": 0})", 422, "over the budget"},
  };
  for (const auto& c : cases) {
    auto r = post(s->port(), "/v1/route", c.body);
    EXPECT_EQ(r.status, c.status) << c.body << " -> " << r.body;
    const json j = json::parse(r.body);
    if (!j.contains("error")) continue;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(c.needle), std::string::npos) << c.body << " -> " << r.body;
  }
  EXPECT_EQ(get(s->port(), "/v1/route").status, 405);
  EXPECT_EQ(post(s->port(), "/healthz", "{}").status, 405);
  EXPECT_EQ(get(s->port(), "/v2/anything").status, 404);
  auto chat = post(s->port(), "/v1/chat/completions", "{}");
  EXPECT_EQ(chat.status, 404);
  EXPECT_NE(chat.body.find("not configured"), std::string::npos);

  // 10 MB body, a slow client, abrupt disconnects: refused or closed, and the server goes on.
  {
    RawClient c(s->port());
    const std::string body(10 * 1024 * 1024, ' ');
    c.send("POST /v1/route HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n");
    c.send(body);
    const std::string resp = c.read_all();
    EXPECT_TRUE(resp.empty() || resp.find("413") != std::string::npos) << resp.substr(0, 200);
  }
  {
    RawClient c(s->port());
    c.send("POST /v1/route HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{\"query\":");
    bool timed_out = true;
    c.read_all(&timed_out);  // the server gives up after its 0.5 s read timeout
    EXPECT_FALSE(timed_out);
  }
  for (int i = 0; i < 20; ++i) {
    RawClient c(s->port());
    c.send(testing::http_request("POST", "/v1/route", R"({"query": "hello"})"));
    c.reset();
  }
  auto ok = post(s->port(), "/v1/route", R"({"query": "still serving?"})");
  EXPECT_EQ(ok.status, 200) << ok.body;
}

TEST(Serve, HealthzAndPrometheusMetricsCountRequests) {
  auto s = serve_export(200, 3, conductor::testing::temp_dir() + "/export");
  for (int i = 0; i < 7; ++i) ASSERT_EQ(post(s->port(), "/v1/route", R"({"query": "x"})").status, 200);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(post(s->port(), "/v1/route", "{").status, 400);
  auto h = get(s->port(), "/healthz");
  ASSERT_EQ(h.status, 200);
  const json hj = json::parse(h.body);
  EXPECT_EQ(hj["status"], "ok");
  EXPECT_EQ(hj["model_version"], s->loaded.model_version);
  EXPECT_EQ(hj["workers"].size(), s->t.live->workers().size());
  auto m = get(s->port(), "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.header("content-type").find("text/plain"), std::string::npos);
  EXPECT_NE(m.body.find("conductor_http_requests_total{path=\"/v1/route\",code=\"200\"} 7\n"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("conductor_http_requests_total{path=\"/v1/route\",code=\"400\"} 3\n"), std::string::npos);
  EXPECT_NE(m.body.find("conductor_http_request_duration_seconds_bucket{path=\"/v1/route\",le=\"+Inf\"} 10\n"),
            std::string::npos);
  EXPECT_NE(m.body.find("conductor_http_request_duration_seconds_count{path=\"/v1/route\"} 10\n"), std::string::npos);
  EXPECT_NE(m.body.find("# TYPE conductor_worker_calls_total counter"), std::string::npos);
  uint64_t decisions = 0;
  for (const auto& a : s->t.live->actions()) {
    const std::string key = "conductor_route_decisions_total{action=\"" + a.name + "\"} ";
    const auto at = m.body.find(key);
    ASSERT_NE(at, std::string::npos) << key;
    decisions += std::stoull(m.body.substr(at + key.size()));
  }
  EXPECT_EQ(decisions, 7u);
}

TEST(Serve, ConcurrentRoutesAgreeWithSequentialOnes) {
  auto s = serve_export(300, 3, conductor::testing::temp_dir() + "/export");
  std::vector<std::string> queries;
  for (int i = 0; i < 40; ++i) queries.push_back("query number " + std::to_string(i) + " about math and code");
  std::vector<std::string> expected;
  for (const auto& q : queries) expected.push_back(json::parse(post(s->port(), "/v1/route", json{{"query", q}}.dump()).body)["action"]["name"]);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 6; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        const int k = (i + t * 7) % 40;
        auto r = post(s->port(), "/v1/route", json{{"query", queries[k]}}.dump());
        if (r.status != 200 || json::parse(r.body)["action"]["name"] != expected[k]) ++mismatches;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace conductor::serve
