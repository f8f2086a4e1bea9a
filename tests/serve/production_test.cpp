// The production loop's serving side: TLS with verification against a self-signed CA (certificates
// made at test time with the `openssl` binary), the provider adapters (OpenAI, Anthropic, Gemini)
// end to end against replay providers over TLS, the error taxonomy, Retry-After, the circuit
// breaker, decision logs with exact propensities, feedback, and a SIGKILL of a logging server.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "serve/circuit_breaker.h"
#include "serve/decision_log.h"
#include "serve/gateway.h"
#include "serve/providers.h"
#include "serve/sim/replay_server.h"
#include "serve/service.h"
#include "tests/serve/gateway_rig.h"
#include "tests/serve/serve_fixtures.h"
#include "tests/test_util.h"
#include "traces/import_jsonl.h"
#include "traces/tokens.h"

namespace conductor::serve {
namespace {

namespace fs = std::filesystem;
using testing::get;
using testing::post;

using testing::Certs;
using testing::certs;
using testing::chat_body;
using testing::clean_query;
using testing::make_rig;
using testing::read_all;
using testing::RigOptions;

std::unique_ptr<HttpServer> tls_hello_server(const std::string& cert, const std::string& key) {
  HttpServerOptions o;
  o.port = 0;
  o.tls_cert_file = cert;
  o.tls_key_file = key;
  auto s = std::make_unique<HttpServer>(o, [](HttpRequest& req, Responder respond) {
    HttpResponse r;
    r.body = json{{"path", req.path}, {"body", req.body}}.dump();
    respond(std::move(r));
  });
  s->start();
  return s;
}

TEST(Tls, VerifiedWithTheRightCaRefusedWithoutIt) {
  const Certs& c = certs();
  auto srv = tls_hello_server(c.cert, c.key);
  const Url url = parse_url("https://127.0.0.1:" + std::to_string(srv->port()));
  EXPECT_TRUE(url.tls);
  // Trusting the test CA: answers, over the IP address and over the host name (SNI + name check).
  auto r = http_post_json(url, "/echo", R"({"x": 1})", {}, 10.0, 1 << 20, TlsClientConfig{c.ca});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["body"], R"({"x": 1})");
  r = http_get(parse_url("https://localhost:" + std::to_string(srv->port())), "/h", 10.0, TlsClientConfig{c.ca});
  EXPECT_EQ(r.status, 200);
  // The system store does not know the test CA: refused, with a clear error.
  try {
    http_get(url, "/h", 10.0);
    FAIL() << "a certificate from an unknown CA was accepted";
  } catch (const CallError& e) {
    EXPECT_EQ(e.kind(), CallErrorKind::kTls);
    const std::string m = e.what();
    EXPECT_NE(m.find("https://127.0.0.1:" + std::to_string(srv->port())), std::string::npos) << m;
    EXPECT_NE(m.find("certificate verification failed: unable to get local issuer certificate"), std::string::npos) << m;
    EXPECT_NE(m.find("ca_file"), std::string::npos) << m;
  }
  // A certificate for another host, signed by the trusted CA: refused (host name verification).
  auto other = tls_hello_server(c.other_cert, c.other_key);
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    try {
      http_get(parse_url("https://" + host + ":" + std::to_string(other->port())), "/h", 10.0, TlsClientConfig{c.ca});
      FAIL() << "a certificate for other.example was accepted for " << host;
    } catch (const CallError& e) {
      EXPECT_EQ(e.kind(), CallErrorKind::kTls);
      EXPECT_NE(std::string(e.what()).find("mismatch"), std::string::npos) << e.what();
    }
  }
  // A plain-HTTP client talking to the TLS port gets no HTTP answer (not a hang).
  EXPECT_THROW(http_get(testing::loopback(srv->port()), "/h", 5.0), CallError);
  // An unreadable CA bundle is a configuration error naming the file.
  try {
    http_get(url, "/h", 5.0, TlsClientConfig{c.dir + "/missing.pem"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.pem"), std::string::npos) << e.what();
  }
}

TEST(Tls, KeepAliveConnectionsAreReused) {
  const Certs& c = certs();
  auto srv = tls_hello_server(c.cert, c.key);
  boost::asio::io_context ioc;
  ConnectionPool pool(ioc, parse_url("https://127.0.0.1:" + std::to_string(srv->port())), TlsClientConfig{c.ca});
  int ok = 0;
  std::function<void(int)> next = [&](int left) {
    if (left == 0) return;
    ClientRequest req;
    req.target = "/n";
    req.body = "{}";
    pool.async_request(req, 10.0, 1 << 20, [&, left](ClientResult r) {
      ok += r.ok && r.response.status == 200;
      next(left - 1);
    });
  };
  next(5);
  ioc.run();
  EXPECT_EQ(ok, 5);
  const PoolStats s = pool.stats();
  EXPECT_EQ(s.requests, 5u);
  EXPECT_EQ(s.connections_opened, 1u);  // one TLS handshake for five requests
  EXPECT_EQ(s.reused, 4u);
}

// ---------------------------------------------------------------------------------------------
// Adapters: exact request shapes and answer parsing.
TEST(Providers, AnthropicRequestMovesTheSystemPromptOutAndMergesTurns) {
  auto a = make_adapter(ApiKind::kAnthropic, AdapterOptions{"2023-06-01", 512});
  const json req = {{"model", "conductor"},
                    {"messages",
                     {{{"role", "system"}, {"content", "be brief"}},
                      {{"role", "user"}, {"content", "hi"}},
                      {{"role", "user"}, {"content", "what is 2+2?"}}}},
                    {"temperature", 0.5},
                    {"stop", "END"}};
  const ClientRequest r = a->build(req, "claude-3-haiku", "sk-test");
  EXPECT_EQ(r.target, "/messages");
  const json b = json::parse(r.body);
  EXPECT_EQ(b["model"], "claude-3-haiku");
  EXPECT_EQ(b["system"], "be brief");
  EXPECT_EQ(b["max_tokens"], 512);
  ASSERT_EQ(b["messages"].size(), 1u);
  EXPECT_EQ(b["messages"][0]["role"], "user");
  EXPECT_EQ(b["messages"][0]["content"], "hi\n\nwhat is 2+2?");
  EXPECT_EQ(b["temperature"], 0.5);
  EXPECT_EQ(b["stop_sequences"], json::array({"END"}));
  EXPECT_EQ(r.headers, (Headers{{"x-api-key", "sk-test"}, {"anthropic-version", "2023-06-01"}}));
  json req2 = req;
  req2["max_tokens"] = 20;
  EXPECT_EQ(json::parse(a->build(req2, "m", "").body)["max_tokens"], 20);

  const ProviderAnswer ans = a->parse(
      R"({"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"4"},{"type":"text","text":"."}],
          "stop_reason":"max_tokens","usage":{"input_tokens":17,"output_tokens":2}})");
  EXPECT_EQ(ans.text, "4.");
  EXPECT_EQ(ans.prompt_tokens, 17);
  EXPECT_EQ(ans.completion_tokens, 2);
  EXPECT_EQ(ans.stop_reason, "length");
  EXPECT_THROW(a->parse(R"({"content": "x"})"), Error);
  EXPECT_THROW(a->build({{"messages", {{{"role", "tool"}, {"content", "x"}}}}}, "m", ""), RequestRefused);
}

// Anthropic and Gemini need a user turn first; OpenAI-format requests need not have one.
TEST(Providers, AnthropicAndGeminiGetAUserTurnFirst) {
  auto an = make_adapter(ApiKind::kAnthropic, AdapterOptions{"2023-06-01", 512});
  auto ge = make_adapter(ApiKind::kGemini, AdapterOptions{"2023-06-01", 512});
  const json assistant_first = {{"messages",
                                 {{{"role", "system"}, {"content", "be brief"}},
                                  {{"role", "assistant"}, {"content", "How can I help?"}},
                                  {{"role", "user"}, {"content", "2+2?"}}}}};
  json b = json::parse(an->build(assistant_first, "m", "").body);
  EXPECT_EQ(b["system"], "be brief");
  ASSERT_EQ(b["messages"].size(), 3u);
  EXPECT_EQ(b["messages"][0], (json{{"role", "user"}, {"content", "Continue."}}));
  EXPECT_EQ(b["messages"][1]["role"], "assistant");
  EXPECT_EQ(b["messages"][2]["content"], "2+2?");
  b = json::parse(ge->build(assistant_first, "m", "").body);
  ASSERT_EQ(b["contents"].size(), 3u);
  EXPECT_EQ(b["contents"][0]["role"], "user");
  EXPECT_EQ(b["contents"][1]["role"], "model");
  // System turns only: their text is the user turn, no separate system prompt.
  const json system_only = {{"messages", {{{"role", "system"}, {"content", "say hi"}}, {{"role", "developer"}, {"content", "briefly"}}}}};
  b = json::parse(an->build(system_only, "m", "").body);
  EXPECT_FALSE(b.contains("system"));
  EXPECT_EQ(b["messages"], json::array({{{"role", "user"}, {"content", "say hi\n\nbriefly"}}}));
  b = json::parse(ge->build(system_only, "m", "").body);
  EXPECT_FALSE(b.contains("systemInstruction"));
  EXPECT_EQ(b["contents"][0]["parts"][0]["text"], "say hi\n\nbriefly");
  // A user-first conversation is unchanged.
  b = json::parse(an->build({{"messages", {{{"role", "user"}, {"content", "x"}}}}}, "m", "").body);
  EXPECT_EQ(b["messages"], json::array({{{"role", "user"}, {"content", "x"}}}));
}

TEST(Providers, GeminiRequestUsesContentsPartsAndSystemInstruction) {
  auto g = make_adapter(ApiKind::kGemini);
  const json req = {{"messages",
                     {{{"role", "system"}, {"content", "be brief"}},
                      {{"role", "user"}, {"content", "hi"}},
                      {{"role", "assistant"}, {"content", "hello"}},
                      {{"role", "user"}, {"content", "2+2?"}}}},
                    {"max_tokens", 64},
                    {"top_p", 0.9}};
  const ClientRequest r = g->build(req, "gemini-1.5-flash", "AIza-test");
  EXPECT_EQ(r.target, "/models/gemini-1.5-flash:generateContent");
  EXPECT_EQ(r.headers, (Headers{{"x-goog-api-key", "AIza-test"}}));
  const json b = json::parse(r.body);
  EXPECT_EQ(b["systemInstruction"], json::parse(R"({"parts": [{"text": "be brief"}]})"));
  EXPECT_EQ(b["contents"], json::parse(R"([{"role": "user", "parts": [{"text": "hi"}]},
                                          {"role": "model", "parts": [{"text": "hello"}]},
                                          {"role": "user", "parts": [{"text": "2+2?"}]}])"));
  EXPECT_EQ(b["generationConfig"], json::parse(R"({"maxOutputTokens": 64, "topP": 0.9})"));
  const ProviderAnswer ans = g->parse(
      R"({"candidates":[{"content":{"parts":[{"text":"4"}],"role":"model"},"finishReason":"STOP"}],
          "usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":1,"totalTokenCount":10}})");
  EXPECT_EQ(ans.text, "4");
  EXPECT_EQ(ans.prompt_tokens, 9);
  EXPECT_EQ(ans.completion_tokens, 1);
  EXPECT_EQ(ans.stop_reason, "stop");
  EXPECT_THROW(g->parse(R"({"promptFeedback": {"blockReason": "SAFETY"}})"), RequestRefused);
  EXPECT_THROW(g->parse(R"({"candidates": []})"), Error);
}

TEST(Providers, OpenAIRequestKeepsTheBodyAndDropsTheConductorExtension) {
  auto o = make_adapter(ApiKind::kOpenAI);
  const json req = {{"model", "conductor"},
                    {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                    {"temperature", 0},
                    {"conductor", {{"budget_usd", 1}}}};
  const ClientRequest r = o->build(req, "gpt-4o", "sk-1");
  EXPECT_EQ(r.target, "/chat/completions");
  EXPECT_EQ(json::parse(r.body), json::parse(R"({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}],
                                                 "temperature": 0, "stream": false})"));
  EXPECT_EQ(r.headers, (Headers{{"Authorization", "Bearer sk-1"}}));
  const ProviderAnswer ans = o->parse(
      R"({"choices":[{"message":{"role":"assistant","content":"4"},"finish_reason":"stop"}],
          "usage":{"prompt_tokens":8,"completion_tokens":1}})");
  EXPECT_EQ(ans.text, "4");
  EXPECT_EQ(ans.prompt_tokens, 8);
  EXPECT_EQ(ans.completion_tokens, 1);
}

TEST(Providers, ErrorsMapToOneTaxonomy) {
  auto cls = [](ApiKind api, int status, const std::string& body, const std::string& retry_after = "") {
    ClientResponse r;
    r.status = status;
    r.body = body;
    if (!retry_after.empty()) r.headers.emplace_back("retry-after", retry_after);
    return make_adapter(api)->classify(r);
  };
  auto e = cls(ApiKind::kOpenAI, 429, R"({"error": {"message": "slow down", "type": "requests"}})", "2");
  EXPECT_EQ(e.kind, UpstreamError::kRateLimited);
  EXPECT_TRUE(e.retryable);
  EXPECT_EQ(e.retry_after_s, 2.0);
  EXPECT_EQ(e.message, "slow down");
  e = cls(ApiKind::kOpenAI, 429, R"({"error": {"message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"}})");
  EXPECT_EQ(e.kind, UpstreamError::kRateLimited);
  EXPECT_FALSE(e.retryable);  // waiting does not refill a spent quota
  EXPECT_EQ(e.retry_after_s, -1.0);
  e = cls(ApiKind::kAnthropic, 529, R"({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})");
  EXPECT_EQ(e.kind, UpstreamError::kOverloaded);
  EXPECT_TRUE(e.retryable);
  e = cls(ApiKind::kAnthropic, 401, R"({"type": "error", "error": {"type": "authentication_error", "message": "bad key"}})");
  EXPECT_EQ(e.kind, UpstreamError::kAuth);
  EXPECT_FALSE(e.retryable);
  e = cls(ApiKind::kGemini, 429,
          R"({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "q",
              "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]}})");
  EXPECT_EQ(e.kind, UpstreamError::kRateLimited);
  EXPECT_EQ(e.retry_after_s, 7.0);
  e = cls(ApiKind::kGemini, 503, R"({"error": {"code": 503, "status": "UNAVAILABLE", "message": "x"}})");
  EXPECT_EQ(e.kind, UpstreamError::kOverloaded);
  e = cls(ApiKind::kGemini, 400, R"({"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "x"}})");
  EXPECT_EQ(e.kind, UpstreamError::kBadRequest);
  EXPECT_FALSE(e.retryable);
  EXPECT_EQ(cls(ApiKind::kOpenAI, 500, "not json").kind, UpstreamError::kServerError);
  EXPECT_EQ(cls(ApiKind::kOpenAI, 502, "").kind, UpstreamError::kServerError);
  EXPECT_EQ(cls(ApiKind::kOpenAI, 504, "").kind, UpstreamError::kTimeout);
  EXPECT_EQ(cls(ApiKind::kOpenAI, 403, "").kind, UpstreamError::kAuth);
  EXPECT_EQ(cls(ApiKind::kOpenAI, 404, "").kind, UpstreamError::kBadRequest);
  EXPECT_EQ(cls(ApiKind::kOpenAI, 500, "", "1.5").retry_after_s, 1.5);

  EXPECT_EQ(parse_retry_after(" 3 "), 3.0);
  EXPECT_EQ(parse_retry_after("soon"), -1.0);
  EXPECT_EQ(parse_retry_after(""), -1.0);
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), 0.0);  // in the past: no wait
  const double future = parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT");
  EXPECT_GT(future, 1e9);
}

TEST(CircuitBreaker, OpensAfterNFailuresThenProbesOnce) {
  using C = CircuitBreaker::Clock;
  CircuitBreaker b(CircuitBreakerConfig{3, 10.0});
  const C::time_point t0{};
  bool probe = true;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(b.try_acquire(t0, &probe));
    EXPECT_FALSE(probe);
    b.on_failure(t0, false);
  }
  EXPECT_EQ(b.state(t0), CircuitBreaker::State::kClosed);
  b.on_success(false);  // a success resets the count
  for (int i = 0; i < 3; ++i) b.on_failure(t0, false);
  EXPECT_EQ(b.state(t0), CircuitBreaker::State::kOpen);
  EXPECT_EQ(b.opens(), 1u);
  EXPECT_FALSE(b.available(t0 + std::chrono::seconds(9)));
  EXPECT_FALSE(b.try_acquire(t0 + std::chrono::seconds(9), &probe));
  const auto t1 = t0 + std::chrono::seconds(10);
  EXPECT_EQ(b.state(t1), CircuitBreaker::State::kHalfOpen);
  ASSERT_TRUE(b.try_acquire(t1, &probe));
  EXPECT_TRUE(probe);
  EXPECT_FALSE(b.try_acquire(t1, &probe));  // one probe at a time
  b.on_failure(t1, true);                   // failed probe: open again
  EXPECT_EQ(b.state(t1), CircuitBreaker::State::kOpen);
  EXPECT_EQ(b.opens(), 2u);
  const auto t2 = t1 + std::chrono::seconds(10);
  ASSERT_TRUE(b.try_acquire(t2, &probe));
  EXPECT_TRUE(probe);
  b.on_success(true);
  EXPECT_EQ(b.state(t2), CircuitBreaker::State::kClosed);
  EXPECT_TRUE(b.available(t2));
}

// ---------------------------------------------------------------------------------------------
// The gateway against replay providers of each API, over TLS with the test CA.
using Rig = testing::GatewayRig;

class GatewayApis : public ::testing::TestWithParam<ApiKind> {};

TEST_P(GatewayApis, AnswersUsageAndCostOverTls) {
  RigOptions ro;
  ro.api = GetParam();
  ro.require_key = ro.api_key = "key-" + std::string(api_name(ro.api));
  auto r = make_rig(ro);
  const TraceSet& T = *r->t.world->traces;
  for (int k = 0; k < 3; ++k) {
    const int q = clean_query(T, k);
    ASSERT_GE(q, 0);
    auto resp = post(r->port(), "/v1/chat/completions", chat_body(T.query_text[q]));
    ASSERT_EQ(resp.status, 200) << resp.body;
    const json j = json::parse(resp.body);
    const std::string worker = j["model"];
    EXPECT_EQ(resp.header("x-conductor-route"), worker);  // one step, one call, no failure
    const int m = T.model_index(worker);
    ASSERT_GE(m, 0);
    const std::size_t at = T.at(q, m);
    const int32_t ans = T.answer[at];
    EXPECT_EQ(j["choices"][0]["message"]["content"],
              ans >= 0 ? "answer " + std::to_string(ans) : T.query_id[q] + " answered by " + T.model_name[m]);
    EXPECT_EQ(j["usage"]["prompt_tokens"], std::max(0, T.input_tokens[q]));
    EXPECT_EQ(j["usage"]["completion_tokens"], std::max(0, T.output_tokens[at]));
    const int w = r->router->worker_index(worker);
    const double cost = (std::max(0, T.input_tokens[q]) * r->t.live->price_in_per_mtok(w) +
                         std::max(0, T.output_tokens[at]) * r->t.live->price_out_per_mtok(w)) / 1e6;
    EXPECT_NEAR(j["conductor"]["cost_usd"].get<double>(), cost, 1e-12);
    // The replay reports the trace's latency; the gateway reports it as the call's latency.
    EXPECT_NEAR(j["conductor"]["latency_s"].get<double>(), T.latency_s[at], 1e-6);
  }
  EXPECT_EQ(r->replay->stats().requests, 3u);
}

TEST_P(GatewayApis, UntrustedCertificateIsATlsFailureNotAnAnswer) {
  RigOptions ro;
  ro.api = GetParam();
  ro.trust_ca = false;
  ro.gateway_extra = "fallback: true\n";
  auto r = make_rig(ro);
  const TraceSet& T = *r->t.world->traces;
  auto resp = post(r->port(), "/v1/chat/completions", chat_body(T.query_text[clean_query(T)]));
  EXPECT_EQ(resp.status, 502) << resp.body;
  EXPECT_NE(resp.header("x-conductor-route").find("!tls"), std::string::npos) << resp.header("x-conductor-route");
  EXPECT_EQ(r->replay->stats().requests, 0u);  // nothing reached the provider
  const std::string metrics = get(r->port(), "/metrics").body;
  EXPECT_NE(metrics.find("kind=\"tls\"} 1\n"), std::string::npos) << metrics;
}

TEST_P(GatewayApis, WrongKeyIsAnAuthErrorAndNotRetried) {
  RigOptions ro;
  ro.api = GetParam();
  ro.tls = false;
  ro.require_key = "right";
  ro.api_key = "wrong";
  auto r = make_rig(ro);
  const TraceSet& T = *r->t.world->traces;
  auto resp = post(r->port(), "/v1/chat/completions", chat_body(T.query_text[clean_query(T)]));
  EXPECT_EQ(resp.status, 502) << resp.body;
  const std::string route = resp.header("x-conductor-route");
  EXPECT_EQ(route.substr(0, route.find(',')).substr(route.find('!')), "!http_401") << route;
  const std::string metrics = get(r->port(), "/metrics").body;
  EXPECT_NE(metrics.find("conductor_worker_retries_total{worker=\"" + route.substr(0, route.find('!')) + "\"} 0\n"),
            std::string::npos)
      << "auth errors must not be retried\n" << metrics;
  EXPECT_NE(metrics.find("kind=\"auth\"} 1\n"), std::string::npos) << metrics;
  EXPECT_EQ(r->replay->stats().requests, 0u);  // refused before the replay counts a request
}

INSTANTIATE_TEST_SUITE_P(Apis, GatewayApis, ::testing::Values(ApiKind::kOpenAI, ApiKind::kAnthropic, ApiKind::kGemini),
                         [](const ::testing::TestParamInfo<ApiKind>& i) { return std::string(api_name(i.param)); });

// A provider that answers 429 with Retry-After to its first call, then 200.
TEST(Gateway, RetryAfterIsHonouredAndTooLongAWaitReroutes) {
  for (const bool too_long : {false, true}) {
    const auto rr = testing::random_router(100, 1);
    const auto& router = rr.router;
    std::mutex mu;
    std::vector<std::chrono::steady_clock::time_point> calls;
    HttpServerOptions mo;
    mo.port = 0;
    HttpServer mock(mo, [&](HttpRequest& req, Responder respond) {
      std::size_t n;
      {
        std::lock_guard<std::mutex> lk(mu);
        calls.push_back(std::chrono::steady_clock::now());
        n = calls.size();
      }
      HttpResponse r;
      if (n == 1) {
        r.status = 429;
        r.headers.emplace_back("Retry-After", "0.25");
        r.body = R"({"error": {"message": "rate limited", "type": "requests"}})";
      } else {
        r.body = R"({"choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 3, "completion_tokens": 1}})";
      }
      respond(std::move(r));
    });
    mock.start();
    auto svc = testing::gateway_service(
        router, "threads: 2\nretries: 2\nbackoff_initial_s: 0.01\nmax_retry_after_s: " + std::string(too_long ? "0.1" : "5") + "\n",
        "http://127.0.0.1:" + std::to_string(mock.port()) + "/v1");
    auto resp = post(svc.port(), "/v1/chat/completions", chat_body("what is 2+2?"));
    ASSERT_EQ(resp.status, 200) << resp.body;
    const json j = json::parse(resp.body);
    const json& route = j["conductor"]["route"];
    ASSERT_EQ(calls.size(), 2u);
    if (!too_long) {
      // Same worker, second attempt after the provider's 0.25 s (not the 0.01 s backoff).
      ASSERT_EQ(route.size(), 1u) << route.dump();
      EXPECT_EQ(route[0]["status"], "ok");
      EXPECT_EQ(route[0]["retry_after_waited_s"], 0.25);
      EXPECT_GE(std::chrono::duration<double>(calls[1] - calls[0]).count(), 0.25);
    } else {
      // Retry-After above max_retry_after_s: not waited for; the gateway re-routes to another worker.
      ASSERT_EQ(route.size(), 2u) << route.dump();
      EXPECT_EQ(route[0]["status"], "http_429");
      EXPECT_EQ(route[1]["status"], "ok");
      EXPECT_NE(route[0]["worker"], route[1]["worker"]);
    }
  }
}

TEST(Gateway, CircuitBreakerMasksADeadProviderUntilItsProbe) {
  auto probe_rig = make_rig({});
  const TraceSet& T0 = *probe_rig->t.world->traces;
  const std::string text = T0.query_text[clean_query(T0)];
  const std::string top = json::parse(post(probe_rig->port(), "/v1/chat/completions", chat_body(text)).body)["model"];
  probe_rig.reset();
  RigOptions ro;
  ro.tls = false;
  // retries: 1 (the rig's): two failed attempts per request, so the circuit opens after two requests.
  ro.gateway_extra = "circuit_breaker: {failures: 4, cooldown_s: 3600}\n";
  ReplayOptions ropt;
  ropt.fail = {top};
  auto r = make_rig(ro, ropt);
  for (int i = 0; i < 2; ++i) {
    auto resp = post(r->port(), "/v1/chat/completions", chat_body(text));
    ASSERT_EQ(resp.status, 200) << resp.body;
    EXPECT_EQ(resp.header("x-conductor-route").rfind(top + "!http_503", 0), 0u)
        << "top " << top << ", route " << resp.header("x-conductor-route");
  }
  EXPECT_EQ(r->gateway->circuit_state(top), CircuitBreaker::State::kOpen);
  // Open: the worker is masked, the policy routes elsewhere and the provider is not called.
  const uint64_t before = r->replay->stats().requests;
  auto resp = post(r->port(), "/v1/chat/completions", chat_body(text));
  ASSERT_EQ(resp.status, 200) << resp.body;
  EXPECT_EQ(resp.header("x-conductor-route").find(top), std::string::npos) << resp.header("x-conductor-route");
  EXPECT_EQ(r->replay->stats().requests, before + 1);
  const std::string metrics = get(r->port(), "/metrics").body;
  EXPECT_NE(metrics.find("conductor_provider_circuit_state{worker=\"" + top + "\"} 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("conductor_provider_circuit_opens_total{worker=\"" + top + "\"} 1\n"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Decision logs, exploration propensities and feedback.
std::vector<json> log_rows(const std::string& dir, const std::string& type = "") {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  std::vector<json> out;
  for (const auto& f : files) {
    std::istringstream in(read_all(f));
    std::string line;
    while (std::getline(in, line)) {
      json j = json::parse(line);
      if (type.empty() || j["type"] == type) out.push_back(std::move(j));
    }
  }
  return out;
}

TEST(DecisionLog, RouteDecisionsCarryExactPropensitiesAndFeedbackJoinsAtImport) {
  for (const bool sample : {false, true}) {
    const std::string dir = conductor::testing::temp_dir() + (sample ? "/log-sample" : "/log-eps");
    RigOptions ro;
    ro.tls = false;
    ro.max_steps = 3;
    ro.exploration.mode = sample ? ExplorationConfig::Mode::kSample : ExplorationConfig::Mode::kEpsilon;
    ro.exploration.epsilon = sample ? 0.0 : 0.5;
    ro.exploration.seed = 7;
    ro.log.dir = dir;
    ro.log.batch_rows = 16;
    auto r = make_rig(ro);
    const TraceSet T = *r->t.world->traces;  // a copy: the rig goes away before the log is read
    const int n = 40;
    std::vector<std::string> ids;
    std::vector<double> props;
    int explored = 0;
    for (int i = 0; i < n; ++i) {
      const int q = i;
      const int tokens = estimate_tokens(T.query_text[q]);
      json body = {{"query", T.query_text[q]}, {"query_id", T.query_id[q]}, {"input_tokens", tokens}};
      if (i == 5) body["price_factors"] = {{r->t.live->workers()[0], 1.1}};  // logged as sent
      auto resp = post(r->port(), "/v1/route", body.dump());
      ASSERT_EQ(resp.status, 200) << resp.body;
      const json j = json::parse(resp.body);
      ids.push_back(j["request_id"]);
      EXPECT_EQ(resp.header("x-conductor-request-id"), ids.back());
      props.push_back(j["propensity"]);
      // The exact propensity of the action taken, from the policy's own probabilities.
      LiveQuery lq;
      lq.text = T.query_text[q];
      lq.input_tokens = tokens;
      lq.available.assign(r->t.live->workers().size(), 1);
      if (i == 5) {
        lq.price_factor.assign(r->t.live->workers().size(), 1.0);
        lq.price_factor[0] = 1.1;
      }
      auto ep = r->t.live->start(lq);
      const Decision greedy = r->router->decide(*ep);
      int allowed = 0;
      for (uint8_t m : greedy.mask) allowed += m;
      int a = -1;
      for (std::size_t k = 0; k < r->t.live->actions().size(); ++k)
        if (r->t.live->actions()[k].name == j["action"]["name"]) a = static_cast<int>(k);
      ASSERT_GE(a, 0) << j.dump();
      const double expected = sample ? greedy.probs[a] : 0.5 * (a == greedy.action) + 0.5 / allowed;
      EXPECT_NEAR(props.back(), expected, 1e-6) << j.dump();
      explored += a != greedy.action;
    }
    EXPECT_GT(explored, 0);  // epsilon 0.5 over 40 draws, or sampling a random policy, explores
    // Feedback: one valid label; every malformed one gets a 4xx JSON error and is not logged.
    auto fb = post(r->port(), "/v1/feedback", json{{"request_id", ids[3]}, {"quality", 0.75}, {"source", "judge"}}.dump());
    EXPECT_EQ(fb.status, 200) << fb.body;
    for (const auto& [body, status] : std::vector<std::pair<std::string, int>>{
             {json{{"request_id", "req_0000000000000000"}, {"quality", 1}}.dump(), 404},
             {json{{"request_id", ids[4]}, {"quality", 1.5}}.dump(), 400},
             {json{{"request_id", ids[4]}, {"quality", -0.1}}.dump(), 400},
             {json{{"request_id", ids[4]}, {"quality", "good"}}.dump(), 400},
             {json{{"request_id", ids[4]}, {"quality", true}}.dump(), 400},
             {json{{"request_id", 17}, {"quality", 1}}.dump(), 400},
             {json{{"quality", 1}}.dump(), 400},
             {json{{"request_id", ids[4]}, {"quality", 1}, {"rating", 5}}.dump(), 400},
             {std::string("{"), 400},
             {std::string("[1]"), 400}}) {
      auto bad = post(r->port(), "/v1/feedback", body);
      EXPECT_EQ(bad.status, status) << body << " -> " << bad.body;
      EXPECT_TRUE(json::parse(bad.body).contains("error")) << bad.body;
    }
    const std::string metrics = get(r->port(), "/metrics").body;
    EXPECT_NE(metrics.find("conductor_feedback_total{result=\"recorded\"} 1\n"), std::string::npos) << metrics;
    const std::string r_workers0 = r->t.live->workers()[0];
    r.reset();  // drains the server and closes the log
    const auto decisions = log_rows(dir, "decision");
    const auto feedback = log_rows(dir, "feedback");
    ASSERT_EQ(decisions.size(), static_cast<std::size_t>(n));
    ASSERT_EQ(feedback.size(), 1u);
    EXPECT_EQ(feedback[0]["request_id"], ids[3]);
    EXPECT_EQ(feedback[0]["quality"], 0.75);
    for (int i = 0; i < n; ++i) {
      EXPECT_EQ(decisions[i]["request_id"], ids[i]);
      EXPECT_EQ(decisions[i]["endpoint"], "route");
      EXPECT_EQ(decisions[i]["exploration"], sample ? "sample" : "epsilon:0.5");
      EXPECT_EQ(decisions[i]["query_id"], T.query_id[i]);
      EXPECT_EQ(decisions[i]["propensity"].get<double>(), props[i]);
      EXPECT_EQ(decisions[i]["policy"], "test-model");
      if (i == 5) EXPECT_EQ(decisions[i]["price_factors"], (json{{r_workers0, 1.1}})) << decisions[i].dump();
      else EXPECT_FALSE(decisions[i].contains("price_factors")) << decisions[i].dump();
    }
    // Import: one /decisions row per logged decision, the feedback joined by request id.
    ImportReport rep;
    const TraceSet logs = import_jsonl({dir}, {}, rep);
    ASSERT_EQ(logs.decisions.size(), static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      EXPECT_EQ(logs.decisions.propensity[i], props[i]);
      if (i == 3) EXPECT_EQ(logs.decisions.quality[i], 0.75f);
      else EXPECT_TRUE(std::isnan(logs.decisions.quality[i]));
      EXPECT_EQ(logs.model_name[logs.decisions.action[i]], decisions[i]["chosen"]);
    }
    ASSERT_FALSE(rep.notes.empty());
    EXPECT_NE(rep.notes.back().find("1 joined to their decision"), std::string::npos) << rep.notes.back();
  }
}

TEST(DecisionLog, GatewayDecisionsLogEveryStepWithItsOutcome) {
  const std::string dir = conductor::testing::temp_dir() + "/log-gw";
  RigOptions ro;
  ro.tls = false;
  ro.max_steps = 3;
  ro.exploration.mode = ExplorationConfig::Mode::kEpsilon;
  ro.exploration.epsilon = 0.1;
  ro.log.dir = dir;
  ro.log.log_query_text = false;
  auto r = make_rig(ro);
  const TraceSet& T = *r->t.world->traces;
  std::vector<json> answers;
  for (int i = 0; i < 5; ++i) {
    const int q = clean_query(T, i);
    auto resp = post(r->port(), "/v1/chat/completions", chat_body(T.query_text[q], {{"query_id", T.query_id[q]}}));
    ASSERT_EQ(resp.status, 200) << resp.body;
    answers.push_back(json::parse(resp.body));
    EXPECT_EQ(post(r->port(), "/v1/feedback", json{{"request_id", resp.header("x-conductor-request-id")}, {"quality", 1}}.dump()).status, 200);
  }
  r.reset();
  const auto rows = log_rows(dir, "decision");
  ASSERT_EQ(rows.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    const json& row = rows[i];
    EXPECT_EQ(row["endpoint"], "chat");
    EXPECT_FALSE(row.contains("text"));  // log_query_text: false
    EXPECT_EQ(row["request_id"], answers[i]["conductor"]["request_id"]);
    EXPECT_EQ(row["answered_by"], answers[i]["model"]);
    EXPECT_NEAR(row["cost_usd"].get<double>(), answers[i]["conductor"]["cost_usd"].get<double>(), 1e-12);
    // Every call of the route is a step with its outcome; the first call is `chosen`.
    int calls = 0;
    for (const auto& st : row["steps"])
      if (st.contains("error")) {
        EXPECT_EQ(st["action"], "call:" + answers[i]["conductor"]["route"][calls]["worker"].get<std::string>());
        ++calls;
        EXPECT_GT(st["propensity"].get<double>(), 0.0);
      }
    EXPECT_EQ(calls, static_cast<int>(answers[i]["conductor"]["route"].size()));
    EXPECT_EQ(row["chosen"], answers[i]["conductor"]["route"][0]["worker"]);
  }
  ImportReport rep;
  const TraceSet logs = import_jsonl({dir}, {}, rep);
  ASSERT_EQ(logs.decisions.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(logs.decisions.quality[i], 1.0f);
  EXPECT_FALSE(logs.has_text());
}

TEST(DecisionLog, RotatesBySizeAndKeepsEveryRowInOrder) {
  const std::string dir = conductor::testing::temp_dir() + "/log-rotate";
  DecisionLogConfig c;
  c.dir = dir;
  c.rotate_bytes = 4096;
  c.batch_rows = 7;
  {
    DecisionLog log(c);
    for (int i = 0; i < 500; ++i)
      ASSERT_TRUE(log.append(json{{"type", "feedback"}, {"request_id", "r" + std::to_string(i)}, {"quality", 1}}.dump()));
    log.close();
    const DecisionLogStats s = log.stats();
    EXPECT_EQ(s.rows_written, 500u);
    EXPECT_EQ(s.rows_dropped, 0u);
    EXPECT_GE(s.files, 5u);
    EXPECT_LE(s.max_batch_rows, 7u);
  }
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    ++files;
    EXPECT_LE(fs::file_size(e.path()), 4096u);
  }
  EXPECT_GE(files, 5);
  const auto rows = log_rows(dir);
  ASSERT_EQ(rows.size(), 500u);
  for (int i = 0; i < 500; ++i) EXPECT_EQ(rows[i]["request_id"], "r" + std::to_string(i));
}

// A full queue drops rows instead of blocking the request, counts them, and leaves a log_gap row
// saying how many were lost; every row append() accepted is written, in order.
TEST(DecisionLog, FullQueueDropsCountsAndRecordsTheGap) {
  const std::string dir = conductor::testing::temp_dir() + "/log-full";
  DecisionLogConfig c;
  c.dir = dir;
  c.queue_rows = 2;
  c.batch_rows = 2;
  std::vector<int> accepted;
  uint64_t refused = 0;
  {
    DecisionLog log(c);
    // The writer fdatasyncs every batch of 2: appending without pause fills the queue quickly.
    for (int i = 0; i < 200000 && refused < 50; ++i) {
      if (log.append(json{{"type", "feedback"}, {"request_id", "r" + std::to_string(i)}, {"quality", 1}}.dump()))
        accepted.push_back(i);
      else
        ++refused;
    }
    ASSERT_GT(refused, 0u) << "the queue never filled";
    log.close();
    const DecisionLogStats s = log.stats();
    EXPECT_EQ(s.rows_dropped, refused);
    EXPECT_EQ(s.write_errors, 0u);
  }
  uint64_t gap_total = 0;
  std::vector<int> written;
  for (const auto& r : log_rows(dir)) {
    if (r.value("type", "") == "log_gap") {
      gap_total += r.at("dropped").get<uint64_t>();
      continue;
    }
    written.push_back(std::stoi(r.at("request_id").get<std::string>().substr(1)));
  }
  EXPECT_EQ(gap_total, refused);
  EXPECT_EQ(written, accepted);
}

// ---------------------------------------------------------------------------------------------
// kill -9 of a logging server under load. The server runs in a child process (this test binary,
// re-executed with a filter that selects the hidden child test below); the parent loads it with
// /v1/route requests, snapshots the log mid-way, kills it with SIGKILL and checks the log.
constexpr int kKillBatchRows = 256, kKillQueueRows = 256;

TEST(DecisionLogChild, DISABLED_ServeUntilKilled) {
  const char* dir = std::getenv("CONDUCTOR_KILL9_DIR");
  if (!dir) GTEST_SKIP() << "run by DecisionLog.SurvivesSigkillUnderLoad";
  auto t = testing::make_test_world(100, 1);
  const MlpSpec spec = testing::mlp_spec_for(*t.live);
  auto router = std::make_shared<Router>(
      std::shared_ptr<const Policy>(make_mlp_policy(spec, testing::random_mlp_tensors(spec, 42, 0.3))), t.live, "v");
  DecisionLogConfig lc;
  lc.dir = std::string(dir) + "/logs";
  lc.batch_rows = kKillBatchRows;
  lc.queue_rows = kKillQueueRows;
  ExplorationConfig x;
  x.mode = ExplorationConfig::Mode::kEpsilon;
  x.epsilon = 0.1;
  HttpServerOptions o;
  o.port = 0;
  o.threads = 2;
  ConductorService svc(router, nullptr, o, x, lc);
  svc.start();
  {
    std::ofstream f(std::string(dir) + "/port.tmp");
    f << svc.port();
  }
  fs::rename(std::string(dir) + "/port.tmp", std::string(dir) + "/port");
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));  // until SIGKILL
}

TEST(DecisionLog, SurvivesSigkillUnderLoad) {
  const std::string dir = conductor::testing::temp_dir() + "/kill9";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  // Everything the child needs is prepared before fork(): between fork and exec only
  // async-signal-safe calls.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  env_strings.push_back("CONDUCTOR_KILL9_DIR=" + dir);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execle(self.c_str(), self.c_str(), "--gtest_filter=DecisionLogChild.DISABLED_ServeUntilKilled",
             "--gtest_also_run_disabled_tests", static_cast<char*>(nullptr), envp.data());
    ::_exit(127);
  }
  int port = 0;
  for (int i = 0; i < 1200 && port == 0; ++i) {
    std::ifstream f(dir + "/port");
    if (!(f >> port)) port = 0;
    if (port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (port == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    FAIL() << "the child server did not start";
  }
  auto world = testing::make_test_world(100, 1);
  const TraceSet& T = *world.world->traces;
  std::mutex mu;
  std::set<std::string> answered;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c)
    clients.emplace_back([&, c] {
      for (int i = 0; !stop.load(); ++i) {
        const std::size_t q = static_cast<std::size_t>(c * 7919 + i) % T.n_queries();
        try {
          auto r = http_post_json(testing::loopback(port), "/v1/route",
                                  json{{"query", T.query_text[q]}, {"query_id", T.query_id[q]}}.dump(), {}, 5.0);
          if (r.status == 200) {
            std::lock_guard<std::mutex> lk(mu);
            answered.insert(json::parse(r.body)["request_id"].get<std::string>());
          }
        } catch (const Error&) {  // the server is gone
        }
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  // What an import at this moment would read: each file's bytes.
  std::map<std::string, std::string> snapshot;
  for (const auto& e : fs::directory_iterator(dir + "/logs")) snapshot[e.path().string()] = read_all(e.path().string());
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

  // Nothing written before was changed: every snapshot is a prefix of the file now.
  for (const auto& [path, bytes] : snapshot) {
    const std::string now = read_all(path);
    ASSERT_GE(now.size(), bytes.size()) << path;
    EXPECT_EQ(now.compare(0, bytes.size(), bytes), 0) << path << " was rewritten";
  }
  // Every complete line imports (a line cut short by the kill is skipped and reported).
  ImportReport rep;
  const TraceSet logs = import_jsonl({dir + "/logs"}, {}, rep);
  std::set<std::string> logged;
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir + "/logs")) files.push_back(e.path().string());
  for (const auto& f : files) {
    std::istringstream in(read_all(f));
    std::string line;
    while (std::getline(in, line)) {
      json j;
      try {
        j = json::parse(line);
      } catch (const json::exception&) {
        continue;  // the cut line
      }
      if (j["type"] != "decision") continue;
      EXPECT_TRUE(logged.insert(j["request_id"].get<std::string>()).second) << "duplicate row " << line;
    }
  }
  EXPECT_EQ(logs.decisions.size(), logged.size());
  std::size_t lost = 0;
  for (const auto& id : answered) lost += !logged.count(id);
  std::printf("kill -9 under load: %zu requests answered, %zu rows logged, %zu answered but not logged "
              "(bound: batch_rows + queue_rows = %d)\n",
              answered.size(), logged.size(), lost, kKillBatchRows + kKillQueueRows);
  EXPECT_GT(answered.size(), 100u);
  EXPECT_LE(lost, static_cast<std::size_t>(kKillBatchRows + kKillQueueRows));
}

}  // namespace
}  // namespace conductor::serve
