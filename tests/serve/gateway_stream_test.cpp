// Streaming through the gateway (relayed from the provider's own stream, or buffered until the
// workflow ends), the providers' server-sent events read by each adapter, client disconnects that
// cancel the upstream call, GET /v1/models, direct worker calls and the Anthropic door.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include "serve/sse.h"
#include "tests/serve/gateway_rig.h"

namespace conductor::serve {
namespace {

namespace fs = std::filesystem;
using testing::chat_body;
using testing::clean_query;
using testing::get;
using testing::make_rig;
using testing::post;
using testing::RigOptions;

// The data payloads of an SSE body, in order ([DONE] included as a string).
std::vector<std::string> sse_data(const std::string& body) {
  std::vector<std::string> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("data: ", 0) == 0) out.push_back(line.substr(6));
  return out;
}

// The text of OpenAI chunks.
std::string chunk_text(const std::vector<std::string>& data) {
  std::string text;
  for (const auto& d : data) {
    if (d == "[DONE]") continue;
    const json c = json::parse(d);
    if (c.contains("choices") && !c["choices"].empty() && c["choices"][0]["delta"].contains("content"))
      text += c["choices"][0]["delta"]["content"].get<std::string>();
  }
  return text;
}

std::string stream_body(const std::string& text, bool include_usage) {
  json j = json::parse(chat_body(text));
  j["stream"] = true;
  if (include_usage) j["stream_options"] = {{"include_usage", true}};
  return j.dump();
}

std::vector<json> log_rows(const std::string& dir) {
  std::vector<json> rows;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::istringstream in(testing::read_all(e.path().string()));
    std::string line;
    while (std::getline(in, line))
      if (!line.empty()) rows.push_back(json::parse(line));
  }
  return rows;
}

bool wait_for(const std::function<bool()>& cond, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

// ---------------------------------------------------------------------------------------------
// The adapters' stream readers against the encoders, fed one byte at a time.

class StreamReaders : public ::testing::TestWithParam<ApiKind> {};

TEST_P(StreamReaders, ReadTheEncodedEventsInAnySplit) {
  const ApiKind api = GetParam();
  auto enc = make_sse_encoder(api, "id-1", "m", /*include_usage=*/true);
  const std::string body = enc->begin() + enc->delta("ans") + enc->delta("wer ") + enc->delta("7") +
                           enc->end("length", 12, 3, {{"conductor_answer_id", 7}, {"conductor_latency_s", 0.25}});
  for (const std::size_t step : {std::size_t(1), std::size_t(7), body.size()}) {
    auto reader = make_adapter(api)->stream_reader();
    std::vector<std::string> pieces;
    for (std::size_t i = 0; i < body.size(); i += step) reader->feed(body.substr(i, step), &pieces);
    std::string joined;
    for (const auto& p : pieces) joined += p;
    EXPECT_EQ(joined, "answer 7") << api_name(api) << " step " << step;
    if (step == body.size()) EXPECT_EQ(pieces.size(), 3u);
    const ProviderAnswer a = reader->finish();
    EXPECT_EQ(a.text, "answer 7");
    EXPECT_EQ(a.stop_reason, "length");
    EXPECT_EQ(a.prompt_tokens, 12);
    EXPECT_EQ(a.completion_tokens, 3);
    EXPECT_TRUE(a.has_answer_id);
    EXPECT_EQ(a.answer_id, 7);
    EXPECT_DOUBLE_EQ(a.simulated_latency_s, 0.25);
  }
}

TEST_P(StreamReaders, ErrorEventsAreClassifiedAndATruncatedStreamFails) {
  const ApiKind api = GetParam();
  auto enc = make_sse_encoder(api, "id-1", "m");
  {
    auto reader = make_adapter(api)->stream_reader();
    std::vector<std::string> pieces;
    reader->feed(enc->begin() + enc->delta("par"), &pieces);
    try {
      reader->feed(enc->error("overloaded", "upstream_error", api == ApiKind::kAnthropic ? 529 : 503), &pieces);
      FAIL() << "no StreamFailure for " << api_name(api);
    } catch (const StreamFailure& e) {
      EXPECT_EQ(e.error().kind, api == ApiKind::kOpenAI ? UpstreamError::kServerError : UpstreamError::kOverloaded)
          << api_name(api);
      EXPECT_TRUE(e.error().retryable);
    }
    EXPECT_EQ(pieces, std::vector<std::string>{"par"});
  }
  {
    auto reader = make_adapter(api)->stream_reader();
    std::vector<std::string> pieces;
    reader->feed(enc->begin() + enc->delta("par"), &pieces);
    EXPECT_THROW(reader->finish(), Error) << "a stream without its end marker is incomplete";
  }
  {
    auto reader = make_adapter(api)->stream_reader();
    std::vector<std::string> pieces;
    EXPECT_THROW(reader->feed("data: {not json\n\n", &pieces), Error);
  }
}

INSTANTIATE_TEST_SUITE_P(Apis, StreamReaders,
                         ::testing::Values(ApiKind::kOpenAI, ApiKind::kAnthropic, ApiKind::kGemini),
                         [](const auto& info) { return std::string(api_name(info.param)); });

TEST(StreamRequests, AskEachProviderForItsStream) {
  const json req = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  const json oa = json::parse(make_adapter(ApiKind::kOpenAI)->build_stream(req, "m", "").body);
  EXPECT_EQ(oa["stream"], true);
  EXPECT_EQ(oa["stream_options"]["include_usage"], true);
  EXPECT_EQ(json::parse(make_adapter(ApiKind::kAnthropic)->build_stream(req, "m", "").body)["stream"], true);
  EXPECT_EQ(make_adapter(ApiKind::kGemini)->build_stream(req, "models/g", "").target,
            "/models/g:streamGenerateContent?alt=sse");
  EXPECT_EQ(json::parse(make_adapter(ApiKind::kOpenAI)->build(req, "m", "").body)["stream"], false);
}

// ---------------------------------------------------------------------------------------------
// Streaming end to end, every provider API (over TLS).

class GatewayStreams : public ::testing::TestWithParam<ApiKind> {};

TEST_P(GatewayStreams, ARelayedStreamCarriesTheNonStreamedAnswer) {
  RigOptions ro;
  ro.api = GetParam();
  ro.max_steps = 1;  // the first call is certainly the last: relayed
  auto r = make_rig(ro);
  const TraceSet& T = *r->t.world->traces;
  for (int k = 0; k < 3; ++k) {
    const std::string text = T.query_text[clean_query(T, k)];
    auto plain = post(r->port(), "/v1/chat/completions", chat_body(text));
    ASSERT_EQ(plain.status, 200) << plain.body;
    const json pj = json::parse(plain.body);
    auto streamed = post(r->port(), "/v1/chat/completions", stream_body(text, /*include_usage=*/true));
    ASSERT_EQ(streamed.status, 200) << streamed.body;
    EXPECT_EQ(streamed.header("content-type"), "text/event-stream");
    EXPECT_EQ(streamed.header("x-conductor-stream"), "relayed");
    EXPECT_EQ(streamed.header("x-conductor-route"), plain.header("x-conductor-route"));
    EXPECT_FALSE(streamed.header("x-conductor-request-id").empty());
    const auto data = sse_data(streamed.body);
    ASSERT_GE(data.size(), 4u) << streamed.body;
    EXPECT_EQ(data.back(), "[DONE]");
    EXPECT_EQ(chunk_text(data), pj["choices"][0]["message"]["content"].get<std::string>());
    // The replay providers stream one character per event: the answer came in pieces.
    EXPECT_GE(data.size(), 4 + pj["choices"][0]["message"]["content"].get<std::string>().size() - 1);
    const json first = json::parse(data.front());
    EXPECT_EQ(first["object"], "chat.completion.chunk");
    EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
    const json usage = json::parse(data[data.size() - 2]);
    EXPECT_TRUE(usage["choices"].empty());
    EXPECT_EQ(usage["usage"], pj["usage"]);
    EXPECT_EQ(usage["conductor"]["route"][0]["status"], "ok");
    EXPECT_NEAR(usage["conductor"]["cost_usd"].get<double>(), pj["conductor"]["cost_usd"].get<double>(), 1e-12);
    // Without include_usage there is no usage chunk: the finish chunk is the last before [DONE].
    auto no_usage = post(r->port(), "/v1/chat/completions", stream_body(text, false));
    const auto d2 = sse_data(no_usage.body);
    ASSERT_GE(d2.size(), 2u);
    const json last = json::parse(d2[d2.size() - 2]);
    EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
    EXPECT_FALSE(last.contains("usage"));
  }
  EXPECT_EQ(r->replay->stats().streams_completed, 6u);
}

INSTANTIATE_TEST_SUITE_P(Apis, GatewayStreams,
                         ::testing::Values(ApiKind::kOpenAI, ApiKind::kAnthropic, ApiKind::kGemini),
                         [](const auto& info) { return std::string(api_name(info.param)); });

TEST(GatewayStreaming, AWorkflowThatMayGoOnStreamsTheChosenAnswerOnceKnown) {
  RigOptions ro;
  ro.tls = false;
  ro.max_steps = 3;
  auto r = make_rig(ro);
  const TraceSet& T = *r->t.world->traces;
  int buffered = 0;
  for (int k = 0; k < 12; ++k) {
    const std::string text = T.query_text[clean_query(T, k)];
    auto plain = post(r->port(), "/v1/chat/completions", chat_body(text));
    ASSERT_EQ(plain.status, 200) << plain.body;
    auto streamed = post(r->port(), "/v1/chat/completions", stream_body(text, false));
    ASSERT_EQ(streamed.status, 200) << streamed.body;
    const std::string mode = streamed.header("x-conductor-stream");
    ASSERT_TRUE(mode == "buffered" || mode == "relayed") << mode;
    buffered += mode == "buffered";
    // Greedy policy, deterministic replay: the same route and the same answer either way.
    EXPECT_EQ(streamed.header("x-conductor-route"), plain.header("x-conductor-route"));
    EXPECT_EQ(chunk_text(sse_data(streamed.body)),
              json::parse(plain.body)["choices"][0]["message"]["content"].get<std::string>());
    if (mode == "buffered") EXPECT_EQ(streamed.header("x-conductor-cost-usd"), plain.header("x-conductor-cost-usd"));
  }
  // The first of three steps is never certainly the last: a request the policy finishes early is buffered.
  EXPECT_GT(buffered, 0);
}

TEST(GatewayStreaming, BadStreamOptionsGet400) {
  RigOptions ro;
  ro.tls = false;
  auto r = make_rig(ro);
  for (const std::string& extra : {std::string(R"("stream": "yes")"), std::string(R"("stream": false, "stream_options": {"include_usage": true})"),
                                   std::string(R"("stream": true, "stream_options": {"include_usage": 1})"),
                                   std::string(R"("stream": true, "stream_options": {"colour": true})")}) {
    auto resp = post(r->port(), "/v1/chat/completions",
                     R"({"model": "conductor", "messages": [{"role": "user", "content": "x"}], )" + extra + "}");
    EXPECT_EQ(resp.status, 400) << extra << " -> " << resp.body;
    EXPECT_NE(resp.body.find("stream"), std::string::npos) << resp.body;
  }
}

// A provider that streams a piece of its answer, then fails with an error event.
TEST(GatewayStreaming, AFailureAfterTheFirstTokenEndsTheStreamWithAnErrorEvent) {
  const auto rr = testing::random_router(300, 1);
  HttpServerOptions po;
  po.port = 0;
  HttpServer provider(po, [](HttpRequest&, Responder respond) {
    auto enc = make_sse_encoder(ApiKind::kOpenAI, "x", "m");
    auto body = std::make_shared<BodyStream>();
    HttpResponse head;
    head.content_type = "text/event-stream";
    head.stream = body;
    body->write(enc->begin() + enc->delta("par"));
    respond(std::move(head));
    body->write(enc->error("the provider fell over", "server_error", 500));
    body->end();
  });
  provider.start();
  auto g = testing::gateway_service(rr.router, "retries: 2\nbackoff_initial_s: 0.01\n",
                                    "http://127.0.0.1:" + std::to_string(provider.port()) + "/v1");
  auto resp = post(g.port(), "/v1/chat/completions", stream_body("hello", false));
  ASSERT_EQ(resp.status, 200) << resp.body;  // the status went out with the first token
  const auto data = sse_data(resp.body);
  EXPECT_EQ(chunk_text({data.begin(), data.end() - 2}), "par");
  const json err = json::parse(data[data.size() - 2]);
  ASSERT_TRUE(err.contains("error")) << resp.body;
  EXPECT_EQ(err["error"]["code"], 502);
  EXPECT_EQ(data.back(), "[DONE]");
  // No retry and no other worker once tokens went out: one call.
  std::istringstream metrics(g.service->metrics().prometheus_text());
  double calls = 0;
  for (std::string line; std::getline(metrics, line);)
    if (line.rfind("conductor_worker_calls_total{", 0) == 0) calls += std::stod(line.substr(line.rfind(' ') + 1));
  EXPECT_EQ(calls, 1.0);
}

// ---------------------------------------------------------------------------------------------
// Client disconnects.

TEST(GatewayStreaming, AClientThatDisconnectsMidStreamCancelsTheUpstreamCall) {
  const std::string dir = conductor::testing::temp_dir() + "/stream-cancel-log";
  fs::remove_all(dir);
  RigOptions ro;
  ro.tls = false;  // the replay server watches a plain connection for the gateway's close
  ro.max_steps = 1;
  ro.log.dir = dir;
  ReplayOptions ropt;
  ropt.delay_s = 4.0;  // the answer's characters spread over 4 s
  auto r = make_rig(ro, ropt);
  const TraceSet T = *r->t.world->traces;
  const std::string text = T.query_text[clean_query(T)];
  const auto t0 = std::chrono::steady_clock::now();
  {
    testing::RawClient c(r->port(), 10.0);
    const std::string body = stream_body(text, false);
    ASSERT_TRUE(c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body));
    // Read until the first non-empty content piece arrived, then hang up.
    auto has_piece = [](const std::string& g) {
      const std::string key = R"("content":")";
      for (auto at = g.find(key); at != std::string::npos; at = g.find(key, at + 1))
        if (at + key.size() < g.size() && g[at + key.size()] != '"') return true;
      return false;
    };
    std::string got;
    while (!has_piece(got)) {
      const std::string more = c.read_some();
      ASSERT_FALSE(more.empty()) << got;
      got += more;
    }
    EXPECT_NE(got.find("x-conductor-stream: relayed"), std::string::npos) << got;
    c.reset();
  }
  EXPECT_TRUE(wait_for([&] { return r->replay->stats().cancelled == 1; }, 3.0))
      << "the replay provider saw no cancel";
  EXPECT_TRUE(wait_for([&] { return r->gateway->in_flight() == 0; }, 2.0));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 3.9)
      << "the request ran to the end of the upstream answer";
  EXPECT_EQ(r->replay->stats().streams_completed, 0u);

  // A non-streamed request whose client leaves while the call is in flight ends at once too.
  {
    const uint64_t before = r->replay->stats().requests;
    testing::RawClient c(r->port(), 10.0);
    ASSERT_TRUE(c.send(testing::http_request("POST", "/v1/chat/completions", chat_body(T.query_text[clean_query(T, 1)]))));
    ASSERT_TRUE(wait_for([&] { return r->replay->stats().requests == before + 1; }, 2.0));
    c.reset();
  }
  EXPECT_TRUE(wait_for([&] { return r->gateway->in_flight() == 0; }, 2.0)) << "the gateway kept waiting for the call";
  EXPECT_TRUE(wait_for([&] { return r->replay->stats().cancelled == 2; }, 2.0))
      << "the upstream call was not cancelled: " << r->replay->stats().cancelled << " cancels";
  r.reset();
  // Both decisions are logged, with the cancelled call and status 499.
  int cancelled = 0;
  for (const json& row : log_rows(dir)) {
    if (row["type"] != "decision") continue;
    EXPECT_EQ(row["status"], 499) << row.dump();
    EXPECT_EQ(row["steps"][0]["failure"], "cancelled") << row.dump();
    ++cancelled;
  }
  EXPECT_EQ(cancelled, 2);
}

// ---------------------------------------------------------------------------------------------
// Models, direct calls, the Anthropic door.

TEST(GatewayModels, ListTheConductorAndTheDirectWorkers) {
  RigOptions ro;
  ro.tls = false;
  auto probe = make_rig(ro);
  const std::string w0 = probe->t.live->workers()[0], w1 = probe->t.live->workers()[1];
  probe.reset();
  ro.gateway_extra = "direct_workers: [" + w0 + ", " + w1 + "]\n";
  auto r = make_rig(ro);
  auto list = get(r->port(), "/v1/models");
  ASSERT_EQ(list.status, 200) << list.body;
  const json j = json::parse(list.body);
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 3u);
  EXPECT_EQ(j["data"][0]["id"], "conductor");
  EXPECT_EQ(j["data"][0]["conductor"]["model_version"], "test-model");
  EXPECT_EQ(j["data"][1]["id"], w0);
  EXPECT_EQ(j["data"][2]["id"], w1);
  for (const auto& m : j["data"]) EXPECT_EQ(m["object"], "model");
  auto one = get(r->port(), "/v1/models/" + w1);
  ASSERT_EQ(one.status, 200);
  EXPECT_EQ(json::parse(one.body)["id"], w1);
  auto none = get(r->port(), "/v1/models/gpt-0");
  EXPECT_EQ(none.status, 404);
  EXPECT_NE(none.body.find("gpt-0"), std::string::npos);
  EXPECT_EQ(post(r->port(), "/v1/models", "{}").status, 405);

  // A direct worker is called as named (no routing); any other model is a 404.
  const TraceSet& T = *r->t.world->traces;
  json body = json::parse(chat_body(T.query_text[clean_query(T)]));
  body["model"] = w1;
  auto direct = post(r->port(), "/v1/chat/completions", body.dump());
  ASSERT_EQ(direct.status, 200) << direct.body;
  EXPECT_EQ(direct.header("x-conductor-route"), w1);
  EXPECT_EQ(json::parse(direct.body)["model"], w1);
  body["stream"] = true;
  auto direct_stream = post(r->port(), "/v1/chat/completions", body.dump());
  EXPECT_EQ(direct_stream.header("x-conductor-stream"), "relayed");
  body["model"] = "gpt-0";
  auto unknown = post(r->port(), "/v1/chat/completions", body.dump());
  EXPECT_EQ(unknown.status, 404);
  EXPECT_NE(unknown.body.find("models: conductor, " + w0 + ", " + w1), std::string::npos) << unknown.body;

  // A direct worker must have a provider.
  auto parse = [&](const std::string& yaml) { return GatewayConfig::parse(ConfigDoc::load_string(yaml, "s.yaml").root()); };
  EXPECT_THROW(Gateway(r->router, parse("direct_workers: [nobody]\nproviders:\n  - {worker: " + w0 +
                                        ", base_url: \"http://127.0.0.1:1/v1\"}\n")),
               Error);
}

TEST(GatewayModels, WithoutAGatewayThereIsNoModel) {
  const auto router = testing::random_router(100, 1).router;
  HttpServerOptions so;
  so.port = 0;
  ConductorService service(router, nullptr, so);
  service.start();
  auto resp = get(service.port(), "/v1/models");
  EXPECT_EQ(resp.status, 404);
  EXPECT_NE(resp.body.find("gateway is not configured"), std::string::npos);
}

TEST(AnthropicDoor, AnswersAndStreamsInTheMessagesFormat) {
  RigOptions ro;
  ro.tls = false;
  ro.max_steps = 1;
  auto r = make_rig(ro);
  const TraceSet& T = *r->t.world->traces;
  const std::string text = T.query_text[clean_query(T)];
  const json chat = json::parse(post(r->port(), "/v1/chat/completions", chat_body(text)).body);
  json m = {{"model", "conductor"},
            {"max_tokens", 64},
            {"system", "be brief"},
            {"messages", {{{"role", "user"}, {"content", {{{"type", "text"}, {"text", text}}}}}}}};
  auto resp = post(r->port(), "/v1/messages", m.dump());
  ASSERT_EQ(resp.status, 200) << resp.body;
  const json a = json::parse(resp.body);
  EXPECT_EQ(a["type"], "message");
  EXPECT_EQ(a["role"], "assistant");
  EXPECT_EQ(a["content"][0]["type"], "text");
  EXPECT_EQ(a["content"][0]["text"], chat["choices"][0]["message"]["content"]);
  EXPECT_EQ(a["stop_reason"], "end_turn");
  EXPECT_EQ(a["usage"]["input_tokens"], chat["usage"]["prompt_tokens"]);
  EXPECT_EQ(a["usage"]["output_tokens"], chat["usage"]["completion_tokens"]);
  EXPECT_FALSE(resp.header("x-conductor-route").empty());

  m["stream"] = true;
  auto s = post(r->port(), "/v1/messages", m.dump());
  ASSERT_EQ(s.status, 200) << s.body;
  // The Anthropic reader reads the door's own stream back.
  auto reader = make_adapter(ApiKind::kAnthropic)->stream_reader();
  std::vector<std::string> pieces;
  reader->feed(s.body, &pieces);
  const ProviderAnswer back = reader->finish();
  EXPECT_EQ(back.text, a["content"][0]["text"]);
  EXPECT_GT(pieces.size(), 1u);
  EXPECT_EQ(back.completion_tokens, a["usage"]["output_tokens"]);
  EXPECT_NE(s.body.find("event: message_stop"), std::string::npos);

  // Errors in Anthropic's shape.
  for (const std::string& bad :
       {std::string(R"({"model": "conductor", "messages": [{"role": "user", "content": "x"}]})"),
        std::string(R"({"model": "conductor", "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]})"),
        std::string(R"({"model": "conductor", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image"}]}]})"),
        std::string(R"({"model": "conductor", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "tools": []})"),
        std::string("{")}) {
    auto e = post(r->port(), "/v1/messages", bad);
    EXPECT_EQ(e.status, 400) << bad << " -> " << e.body;
    const json ej = json::parse(e.body);
    EXPECT_EQ(ej["type"], "error") << e.body;
    EXPECT_EQ(ej["error"]["type"], "invalid_request_error") << e.body;
  }
  auto nf = post(r->port(), "/v1/messages",
                 R"({"model": "claude-9", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})");
  EXPECT_EQ(nf.status, 404);
  EXPECT_EQ(json::parse(nf.body)["error"]["type"], "not_found_error");
}

}  // namespace
}  // namespace conductor::serve
