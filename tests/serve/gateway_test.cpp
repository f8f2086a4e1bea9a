// The OpenAI-compatible gateway end to end on loopback, against trace-replay providers.
#include "serve/gateway.h"

#include <gtest/gtest.h>

#include <set>

#include "serve/sim/replay_server.h"
#include "serve/service.h"
#include "tests/serve/serve_fixtures.h"
#include "traces/tokens.h"

namespace conductor::serve {
namespace {

using testing::get;
using testing::post;

using Rig = testing::GatewayRig;

std::unique_ptr<Rig> make_rig(ReplayOptions ropt, double timeout_s = 5.0, int retries = 1, int max_steps = 3,
                              const std::string& priced_worker = "", double price_factor = 1.0) {
  auto r = std::make_unique<Rig>();
  r->t = testing::make_test_world(300, max_steps);
  const MlpSpec spec = testing::mlp_spec_for(*r->t.live);
  auto policy = std::shared_ptr<const Policy>(make_mlp_policy(spec, testing::random_mlp_tensors(spec, 42, 0.3)));
  r->router = std::make_shared<Router>(policy, r->t.live, "test-model");
  ropt.speedup = 1000.0;
  r->replay = std::make_unique<ReplayProviders>(*r->t.world->traces, ropt);
  HttpServerOptions ro;
  ro.port = 0;
  r->replay_server = std::make_unique<HttpServer>(ro, [rp = r->replay.get()](HttpRequest& q, Responder s) {
    rp->handle(q, std::move(s));
  });
  r->replay->attach(r->replay_server.get());
  r->replay_server->start();
  const std::string yaml_head = "threads: 4\ncall_timeout_s: " + std::to_string(timeout_s) + "\nretries: " +
                                std::to_string(retries) + "\nbackoff_initial_s: 0.01\nproviders:\n";
  std::string yaml = yaml_head;
  for (const auto& w : r->t.live->workers())
    yaml += "  - {worker: " + w + ", base_url: \"http://127.0.0.1:" + std::to_string(r->replay_server->port()) + "/v1\"" +
            (w == priced_worker ? ", price_factor: " + std::to_string(price_factor) : std::string()) + "}\n";
  ConfigDoc doc = ConfigDoc::load_string(yaml, "serve.yaml");
  r->gateway = std::make_shared<Gateway>(r->router, GatewayConfig::parse(doc.root()));
  HttpServerOptions so;
  so.port = 0;
  r->service = std::make_unique<ConductorService>(r->router, r->gateway, so);
  r->service->start();
  return r;
}

// A test-split query whose every outcome was logged without error.
int clean_query(const TraceSet& T, int skip = 0) {
  for (std::size_t q = 0; q < T.n_queries(); ++q) {
    if (T.split[q] != 2) continue;
    bool ok = true;
    for (std::size_t m = 0; m < T.n_models(); ++m) ok = ok && T.error[T.at(q, m)] == kOk;
    if (ok && skip-- == 0) return static_cast<int>(q);
  }
  return -1;
}

std::string chat_body(const std::string& text) {
  return json{{"model", "conductor"}, {"messages", {{{"role", "system"}, {"content", "be brief"}}, {{"role", "user"}, {"content", text}}}}}
      .dump();
}

// The worker the policy calls first for `text` (what the gateway will try first).
std::string first_worker(const Rig& r, const std::string& text) {
  LiveQuery q;
  q.text = text;
  q.input_tokens = estimate_tokens(text);
  q.available.assign(r.t.live->workers().size(), 1);
  return r.router->route(q)["action"]["worker"].get<std::string>();
}

std::vector<std::string> split_route(const std::string& h) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const auto comma = h.find(',', start);
    out.push_back(h.substr(start, comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

TEST(Gateway, AnswersWithUsageCostAndTheRouteTaken) {
  auto r = make_rig({});
  const TraceSet& T = *r->t.world->traces;
  const int q = clean_query(T);
  ASSERT_GE(q, 0);
  const std::string text = T.query_text[q];
  auto resp = post(r->port(), "/v1/chat/completions", chat_body(text));
  ASSERT_EQ(resp.status, 200) << resp.body;
  const json j = json::parse(resp.body);
  EXPECT_EQ(j["object"], "chat.completion");
  const auto route = split_route(resp.header("x-conductor-route"));
  ASSERT_FALSE(route.empty());
  EXPECT_EQ(route[0], first_worker(*r, text));
  for (const auto& step : route) EXPECT_EQ(step.find('!'), std::string::npos) << resp.header("x-conductor-route");
  // The answer is one of the workers' logged answers for this query.
  const std::string content = j["choices"][0]["message"]["content"];
  const int m = T.model_index(j["model"].get<std::string>());
  ASSERT_GE(m, 0);
  const int32_t ans = T.answer[T.at(q, m)];
  EXPECT_EQ(content, ans >= 0 ? "answer " + std::to_string(ans) : T.query_id[q] + " answered by " + T.model_name[m]);
  EXPECT_GT(j["usage"]["total_tokens"].get<int>(), 0);
  EXPECT_EQ(j["usage"]["total_tokens"].get<int>(),
            j["usage"]["prompt_tokens"].get<int>() + j["usage"]["completion_tokens"].get<int>());
  EXPECT_GE(std::stod(resp.header("x-conductor-cost-usd")), 0.0);
  EXPECT_EQ(resp.header("x-conductor-model-version"), "test-model");
  EXPECT_EQ(j["conductor"]["route"].size(), route.size());
}

TEST(Gateway, TopWorkerDownReroutesAndTheHeaderShowsIt) {
  // Find the policy's first choice, then take that worker down.
  auto probe = make_rig({});
  const TraceSet& T = *probe->t.world->traces;
  const int q = clean_query(T);
  const std::string text = T.query_text[q];
  const std::string top = first_worker(*probe, text);
  probe.reset();

  ReplayOptions o;
  o.fail = {top};
  auto r = make_rig(o);
  auto resp = post(r->port(), "/v1/chat/completions", chat_body(text));
  ASSERT_EQ(resp.status, 200) << resp.body;
  const auto route = split_route(resp.header("x-conductor-route"));
  ASSERT_GE(route.size(), 2u) << resp.header("x-conductor-route");
  EXPECT_EQ(route[0], top + "!http_503");
  EXPECT_EQ(route[1].find('!'), std::string::npos);
  const json j = json::parse(resp.body);
  EXPECT_NE(j["model"], top);
  // One retry (retries: 1) before re-routing: two calls and two errors for the failing worker.
  const std::string metrics = get(r->port(), "/metrics").body;
  EXPECT_NE(metrics.find("conductor_worker_calls_total{worker=\"" + top + "\"} 2\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("conductor_worker_errors_total{worker=\"" + top + "\",kind=\"overloaded\"} 2\n"),
            std::string::npos);
  EXPECT_NE(metrics.find("conductor_http_requests_total{path=\"/v1/chat/completions\",code=\"200\"} 1\n"),
            std::string::npos);
}

TEST(Gateway, SlowTopWorkerTimesOutAndIsReroutedAround) {
  auto probe = make_rig({});
  const TraceSet& T = *probe->t.world->traces;
  const int q = clean_query(T, 1);
  const std::string text = T.query_text[q];
  const std::string top = first_worker(*probe, text);
  probe.reset();
  ReplayOptions o;
  o.add_latency[top] = 3.0;
  auto r = make_rig(o, /*timeout_s=*/0.3, /*retries=*/0);
  auto resp = post(r->port(), "/v1/chat/completions", chat_body(text));
  ASSERT_EQ(resp.status, 200) << resp.body;
  const auto route = split_route(resp.header("x-conductor-route"));
  ASSERT_GE(route.size(), 2u);
  EXPECT_EQ(route[0], top + "!timeout");
  EXPECT_NE(json::parse(resp.body)["model"], top);
}

TEST(Gateway, EveryWorkerFailingGivesA502JsonError) {
  ReplayOptions o;
  auto probe = testing::make_test_world(300, 3);
  for (const auto& w : probe.live->workers()) o.fail.insert(w);
  auto r = make_rig(o, 5.0, 0);
  const TraceSet& T = *r->t.world->traces;
  auto resp = post(r->port(), "/v1/chat/completions", chat_body(T.query_text[clean_query(T)]));
  EXPECT_EQ(resp.status, 502) << resp.body;
  const json j = json::parse(resp.body);
  EXPECT_EQ(j["error"]["type"], "upstream_error");
  const auto route = split_route(resp.header("x-conductor-route"));
  EXPECT_EQ(route.size(), r->t.live->workers().size());  // every worker tried once (no retries)
  for (const auto& step : route) EXPECT_NE(step.find("!http_503"), std::string::npos);
  EXPECT_EQ(get(r->port(), "/healthz").status, 200);  // and the gateway goes on
}

// A chat request for a clean test query whose pool is one worker (the rig's fourth: *only).
json single_worker_chat(const Rig& r, std::string* only) {
  const TraceSet& T = *r.t.world->traces;
  *only = r.t.live->workers()[3];
  json body = json::parse(chat_body(T.query_text[clean_query(T)]));
  body["conductor"] = {{"available", {*only}}};
  return body;
}

TEST(Gateway, RestrictedPoolsAndBudgetsAreHonoured) {
  auto r = make_rig({});
  std::string only;
  json body = single_worker_chat(*r, &only);
  auto resp = post(r->port(), "/v1/chat/completions", body.dump());
  ASSERT_EQ(resp.status, 200) << resp.body;
  EXPECT_EQ(resp.header("x-conductor-route"), only);
  body["conductor"] = {{"budget_usd", 0}};
  resp = post(r->port(), "/v1/chat/completions", body.dump());
  EXPECT_EQ(resp.status, 503) << resp.body;  // nothing affordable: no call made
}

// conductor.price_factors: the gateway charges the changed price (and the policy observes it).
TEST(Gateway, PriceFactorsScaleTheChargedCost) {
  auto r = make_rig({});
  std::string only;
  json body = single_worker_chat(*r, &only);
  const json one_worker = body["conductor"];
  auto base = post(r->port(), "/v1/chat/completions", body.dump());
  ASSERT_EQ(base.status, 200) << base.body;
  body["conductor"]["price_factors"] = {{only, 3.0}};
  auto tripled = post(r->port(), "/v1/chat/completions", body.dump());
  ASSERT_EQ(tripled.status, 200) << tripled.body;
  EXPECT_EQ(tripled.header("x-conductor-route"), only);
  const double c0 = std::stod(base.header("x-conductor-cost-usd")), c3 = std::stod(tripled.header("x-conductor-cost-usd"));
  EXPECT_GT(c0, 0.0);
  EXPECT_NEAR(c3, 3.0 * c0, 1e-9 + 1e-6 * c0);
  // The same factor from serve.yaml (providers[].price_factor) for every request; a request's own
  // factor for the worker wins.
  auto priced = make_rig({}, 5.0, 1, 3, only, 3.0);
  body["conductor"] = one_worker;
  auto from_config = post(priced->port(), "/v1/chat/completions", body.dump());
  ASSERT_EQ(from_config.status, 200) << from_config.body;
  EXPECT_NEAR(std::stod(from_config.header("x-conductor-cost-usd")), 3.0 * c0, 1e-9 + 1e-6 * c0);
  body["conductor"]["price_factors"] = {{only, 1.0}};
  auto overridden = post(priced->port(), "/v1/chat/completions", body.dump());
  ASSERT_EQ(overridden.status, 200) << overridden.body;
  EXPECT_NEAR(std::stod(overridden.header("x-conductor-cost-usd")), c0, 1e-9 + 1e-6 * c0);
  body["conductor"]["price_factors"] = {{"nobody", 3.0}};
  auto bad = post(r->port(), "/v1/chat/completions", body.dump());
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_NE(bad.body.find("unknown worker 'nobody'"), std::string::npos) << bad.body;
}

TEST(Gateway, InvalidChatRequestsGet400) {
  auto r = make_rig({});
  for (const std::string& bad :
       {std::string("{"), std::string("[]"), std::string(R"({"model": "x"})"), std::string(R"({"messages": []})"),
        std::string(R"({"messages": [{"role": "user"}]})"), std::string(R"({"messages": [{"role": "system", "content": "x"}]})"),
        std::string(R"({"messages": [{"role": "user", "content": "x"}], "stream": 1})"),
        std::string(R"({"messages": [{"role": "user", "content": "x"}], "conductor": {"available": ["nope"]}})"),
        std::string(R"({"messages": [{"role": "user", "content": "x"}], "conductor": {"pool": 1}})"),
        // The rig's policy was trained for one cost weight: a per-request weight is refused.
        std::string(R"({"messages": [{"role": "user", "content": "x"}], "conductor": {"cost_weight": 30}})")}) {
    auto resp = post(r->port(), "/v1/chat/completions", bad);
    EXPECT_EQ(resp.status, 400) << bad << " -> " << resp.body;
    EXPECT_TRUE(json::parse(resp.body).contains("error"));
  }
}

TEST(Gateway, ConfigErrorsNameTheProvider) {
  auto t = testing::make_test_world(100, 2);
  const MlpSpec spec = testing::mlp_spec_for(*t.live);
  auto router = std::make_shared<Router>(
      std::shared_ptr<const Policy>(make_mlp_policy(spec, testing::random_mlp_tensors(spec, 1))), t.live, "v");
  auto parse = [&](const std::string& yaml) { return GatewayConfig::parse(ConfigDoc::load_string(yaml, "s.yaml").root()); };
  try {
    Gateway g(router, parse("providers:\n  - {worker: nobody, base_url: \"http://127.0.0.1:1/v1\"}\n"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("providers[0]: worker 'nobody'"), std::string::npos) << e.what();
  }
  // https is accepted (TLS with verification); a ca_file on a plain-http provider is a mistake.
  EXPECT_NO_THROW(parse("providers:\n  - {worker: a, base_url: \"https://api.openai.com/v1\"}\n"));
  try {
    Gateway g(router, parse("providers:\n  - {worker: " + t.live->workers()[0] +
                            ", base_url: \"http://127.0.0.1:1/v1\", ca_file: /nonexistent.pem}\n"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ca_file is set but base_url"), std::string::npos) << e.what();
  }
  try {
    Gateway g(router, parse("providers:\n  - {worker: " + t.live->workers()[0] +
                            ", base_url: \"https://127.0.0.1:1/v1\", ca_file: /nonexistent.pem}\n"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("providers[0]: TLS: cannot load ca_file '/nonexistent.pem'"), std::string::npos)
        << e.what();
  }
  try {
    parse("providers:\n  - {worker: a, base_url: \"http://h/v1\", api: grpc}\n");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("s.yaml:2"), std::string::npos) << e.what();
  }
  try {
    Gateway g(router, parse("providers:\n  - {worker: " + t.live->workers()[0] +
                            ", base_url: \"http://127.0.0.1:1/v1\", api_key_env: CONDUCTOR_TEST_SURELY_UNSET}\n"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("CONDUCTOR_TEST_SURELY_UNSET"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse("providers: []\n"), Error);
  EXPECT_THROW(parse("providers:\n  - {worker: a, base_url: \"http://h/v1\", colour: red}\n"), Error);
}

TEST(ReplayProviders, AnswersErrorsAndUnknownsFromTheTrace) {
  auto t = testing::make_test_world(300, 2);
  const TraceSet& T = *t.world->traces;
  auto opts = [](double speedup, std::set<std::string> fail) {
    ReplayOptions o;
    o.speedup = speedup;
    o.fail = std::move(fail);
    return o;
  };
  ReplayProviders rp(T, opts(1000.0, {}));  // logged latencies / 1000
  HttpServerOptions o;
  o.port = 0;
  HttpServer srv(o, [&rp](HttpRequest& q, Responder s) { rp.handle(q, std::move(s)); });
  rp.attach(&srv);
  srv.start();
  // One cell of each logged kind, if the synthetic world has it.
  std::map<int, std::pair<int, int>> found;
  for (std::size_t q = 0; q < T.n_queries(); ++q)
    for (std::size_t m = 0; m < T.n_models(); ++m)
      found.emplace(T.error[T.at(q, m)], std::make_pair(static_cast<int>(q), static_cast<int>(m)));
  ASSERT_TRUE(found.count(kOk));
  const std::map<int, int> status = {{kOk, 200}, {kTimeout, 504}, {kRateLimited, 429}, {kServerError, 500}};
  for (const auto& [err, qm] : found) {
    if (!status.count(err)) continue;
    const auto [q, m] = qm;
    // Ask by query id (works with or without text).
    json body = {{"model", T.model_name[m]}, {"messages", {{{"role", "user"}, {"content", T.query_id[q]}}}}};
    auto resp = post(srv.port(), "/v1/chat/completions", body.dump());
    EXPECT_EQ(resp.status, status.at(err)) << "error code " << err << ": " << resp.body;
    if (err == kOk) {
      const json j = json::parse(resp.body);
      EXPECT_EQ(j["usage"]["completion_tokens"], std::max(0, T.output_tokens[T.at(q, m)]));
      EXPECT_EQ(j["usage"]["prompt_tokens"], std::max(0, T.input_tokens[q]));
    }
  }
  json body = {{"model", "gpt-0"}, {"messages", {{{"role", "user"}, {"content", T.query_id[0]}}}}};
  EXPECT_EQ(post(srv.port(), "/v1/chat/completions", body.dump()).status, 404);
  body = {{"model", T.model_name[0]}, {"messages", {{{"role", "user"}, {"content", "no such query"}}}}};
  EXPECT_EQ(post(srv.port(), "/v1/chat/completions", body.dump()).status, 404);
  EXPECT_EQ(post(srv.port(), "/v1/chat/completions", "{").status, 400);
  auto models = get(srv.port(), "/v1/models");
  ASSERT_EQ(models.status, 200);
  EXPECT_EQ(json::parse(models.body)["data"].size(), T.n_models());
  EXPECT_THROW(ReplayProviders(T, opts(1.0, {"nobody"})), Error);
  EXPECT_THROW(ReplayProviders(T, opts(0.0, {})), Error);
}

}  // namespace
}  // namespace conductor::serve
