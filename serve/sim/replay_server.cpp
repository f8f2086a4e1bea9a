#include "serve/sim/replay_server.h"

#include <chrono>
#include <cmath>
#include <functional>
#include <ctime>

#include "core/json_util.h"
#include "serve/sse.h"

namespace conductor::serve {

ReplayProviders::ReplayProviders(TraceSet traces, ReplayOptions options)
    : traces_(std::move(traces)), options_(std::move(options)), rng_(options_.fail_seed) {
  if (!(options_.speedup > 0) || !std::isfinite(options_.speedup))
    fail("replay-server: --speedup must be a positive number, got ", options_.speedup);
  if (!(options_.fail_rate >= 0 && options_.fail_rate <= 1))
    fail("replay-server: --fail-rate must lie in [0, 1], got ", options_.fail_rate);
  if (std::isnan(options_.delay_s) || options_.delay_s > 3600)
    fail("replay-server: --delay must be seconds in [0, 3600], got ", options_.delay_s);
  if (!traces_.has_outcomes()) fail("replay-server: the trace file has no /outcomes: nothing to replay");
  const std::size_t M = traces_.n_models();
  fail_.assign(M, 0);
  add_latency_.assign(M, 0.0);
  auto known = [&] {
    std::string k;
    for (const auto& n : traces_.model_name) k += (k.empty() ? "" : ", ") + n;
    return k;
  };
  for (const auto& w : options_.fail) {
    const int m = traces_.model_index(w);
    if (m < 0) fail("replay-server: --fail names unknown worker '", w, "' (workers of the trace: ", known(), ")");
    fail_[m] = 1;
  }
  for (const auto& [w, s] : options_.add_latency) {
    if (!(s >= 0) || !std::isfinite(s)) fail("replay-server: --add-latency ", w, "=", s, ": expected seconds >= 0");
    if (w == "*") {
      for (auto& a : add_latency_) a += s;
      continue;
    }
    const int m = traces_.model_index(w);
    if (m < 0) fail("replay-server: --add-latency names unknown worker '", w, "' (workers of the trace: ", known(), ")");
    add_latency_[m] += s;
  }
  for (std::size_t q = 0; q < traces_.n_queries(); ++q) {
    by_id_.emplace(traces_.query_id[q], static_cast<int>(q));
    if (traces_.has_text() && !traces_.query_text[q].empty()) by_text_.emplace(traces_.query_text[q], static_cast<int>(q));
  }
}

int ReplayProviders::find_query(const std::string& content) const {
  if (auto it = by_text_.find(content); it != by_text_.end()) return it->second;
  if (auto it = by_id_.find(content); it != by_id_.end()) return it->second;
  return -1;
}

ReplayStats ReplayProviders::stats() const {
  ReplayStats s;
  s.requests = requests_.load();
  s.injected_failures = injected_.load();
  s.in_flight = in_flight_.load();
  s.peak_in_flight = peak_.load();
  s.streams = streams_.load();
  s.streams_completed = streams_completed_.load();
  s.cancelled = cancelled_.load();
  return s;
}

void ReplayProviders::reset_peak() { peak_.store(in_flight_.load()); }

// The API's error body (and status), with the simulated latency when there is one.
HttpResponse ReplayProviders::api_error(int status, const std::string& message, double latency_s) const {
  HttpResponse r;
  r.status = status;
  json body;
  switch (options_.api) {
    case ApiKind::kOpenAI: {
      const char* type = status == 429   ? "rate_limit_exceeded"
                         : status == 401 ? "invalid_api_key"
                         : status == 404 ? "not_found"
                         : status == 400 ? "invalid_request_error"
                         : status == 504 ? "timeout"
                                         : "server_error";
      body = {{"error", {{"message", message}, {"type", type}, {"code", status}}}};
      break;
    }
    case ApiKind::kAnthropic: {
      const char* type = status == 429   ? "rate_limit_error"
                         : status == 529 ? "overloaded_error"
                         : status == 401 ? "authentication_error"
                         : status == 404 ? "not_found_error"
                         : status == 400 ? "invalid_request_error"
                         : status == 504 ? "timeout_error"
                                         : "api_error";
      body = {{"type", "error"}, {"error", {{"type", type}, {"message", message}}}};
      break;
    }
    case ApiKind::kGemini: {
      const char* st = status == 429   ? "RESOURCE_EXHAUSTED"
                       : status == 503 ? "UNAVAILABLE"
                       : status == 401 ? "UNAUTHENTICATED"
                       : status == 404 ? "NOT_FOUND"
                       : status == 400 ? "INVALID_ARGUMENT"
                       : status == 504 ? "DEADLINE_EXCEEDED"
                                       : "INTERNAL";
      body = {{"error", {{"code", status}, {"message", message}, {"status", st}}}};
      break;
    }
  }
  if (latency_s >= 0 && options_.report_latency) body["conductor_latency_s"] = latency_s;
  r.body = body.dump();
  return r;
}

void ReplayProviders::respond_later(double delay_s, HttpResponse r, Responder respond, RequestCancel* cancel) {
  // Leaves the in-flight count when the answer has been handed over (or dropped).
  std::shared_ptr<void> done(nullptr, [this](void*) { in_flight_.fetch_sub(1); });
  if (delay_s <= 0 || !server_) {
    respond(std::move(r));
    return;
  }
  auto answered = std::make_shared<std::atomic<bool>>(false);
  if (cancel)
    cancel->on_cancel([this, answered] {
      if (!answered->exchange(true)) cancelled_.fetch_add(1, std::memory_order_relaxed);
    });
  server_->run_after(delay_s, [respond = std::move(respond), r = std::move(r), done, answered]() mutable {
    answered->store(true);
    respond(std::move(r));
  });
}

void ReplayProviders::stream_answer(double delay_s, const std::string& id, const std::string& model,
                                    const std::string& text, int in_tok, int out_tok, const json& extra,
                                    bool include_usage, HttpRequest& req, Responder respond) {
  streams_.fetch_add(1, std::memory_order_relaxed);
  std::shared_ptr<SseEncoder> enc = make_sse_encoder(options_.api, id, model, include_usage);
  auto body = std::make_shared<BodyStream>();
  // One piece per character (UTF-8 sequences kept whole).
  std::vector<std::string> pieces;
  for (unsigned char c : text) {
    if ((c & 0xC0) == 0x80 && !pieces.empty()) pieces.back().push_back(static_cast<char>(c));
    else pieces.emplace_back(1, static_cast<char>(c));
  }
  auto finished = std::make_shared<std::atomic<bool>>(false);
  req.cancel->on_cancel([this, finished] {
    if (!finished->exchange(true)) cancelled_.fetch_add(1, std::memory_order_relaxed);
  });
  // Leaves the in-flight count when the last event is out (or the stream was abandoned).
  std::shared_ptr<void> done(nullptr, [this](void*) { in_flight_.fetch_sub(1); });
  HttpResponse head;
  head.content_type = "text/event-stream";
  head.stream = body;
  body->write(enc->begin());
  respond(std::move(head));
  const std::string closing = enc->end("stop", in_tok, out_tok, extra);
  const std::size_t n = pieces.size();
  auto last = [this, body, finished, closing, done] {
    body->write(closing);
    // Counted before the end goes out: a client that has read the whole stream sees it counted.
    if (!finished->exchange(true)) streams_completed_.fetch_add(1, std::memory_order_relaxed);
    body->end();
  };
  if (delay_s <= 0 || !server_) {
    for (const auto& p : pieces) body->write(enc->delta(p));
    return last();
  }
  if (n == 0) return server_->run_after(delay_s, last);
  // One timer at a time (each schedules the next), so the pieces go out in order.
  struct Pieces {
    std::vector<std::string> events;
    std::size_t next = 0;
  };
  auto p = std::make_shared<Pieces>();
  for (const auto& piece : pieces) p->events.push_back(enc->delta(piece));
  const auto t0 = std::chrono::steady_clock::now();
  auto step = std::make_shared<std::function<void()>>();
  *step = [this, p, body, last, t0, delay_s, n, weak = std::weak_ptr<std::function<void()>>(step)] {
    body->write(p->events[p->next]);
    if (++p->next == n) return last();
    const double at = delay_s * static_cast<double>(p->next + 1) / static_cast<double>(n);
    const double now = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (auto s = weak.lock()) server_->run_after(at - now, [s] { (*s)(); });
  };
  server_->run_after(delay_s / static_cast<double>(n), [step] { (*step)(); });
}

namespace {

// The last user message's text in each API's request shape ("" when none).
std::string last_user_text(ApiKind api, const json& j) {
  std::string content;
  if (api == ApiKind::kGemini) {
    if (!j.contains("contents") || !j["contents"].is_array()) return content;
    for (const auto& c : j["contents"]) {
      if (!c.is_object() || c.value("role", "user") != "user" || !c.contains("parts") || !c["parts"].is_array()) continue;
      content.clear();
      for (const auto& p : c["parts"])
        if (p.is_object() && p.contains("text") && p["text"].is_string()) content += p["text"].get<std::string>();
    }
    return content;
  }
  if (!j.contains("messages") || !j["messages"].is_array()) return content;
  for (const auto& msg : j["messages"]) {
    if (!msg.is_object() || msg.value("role", "") != "user" || !msg.contains("content")) continue;
    const json& c = msg["content"];
    if (c.is_string()) {
      content = c.get<std::string>();
    } else if (c.is_array()) {  // Anthropic content blocks
      content.clear();
      for (const auto& b : c)
        if (b.is_object() && b.value("type", "") == "text" && b.contains("text") && b["text"].is_string())
          content += b["text"].get<std::string>();
    }
  }
  return content;
}

// The /healthz body: the API served, the trace's workers and the request counters.
json health_json(const ReplayStats& s, ApiKind api, const TraceSet& traces) {
  return json{{"status", "ok"},
              {"api", api_name(api)},
              {"workers", traces.model_name},
              {"queries", traces.n_queries()},
              {"requests", s.requests},
              {"injected_failures", s.injected_failures},
              {"in_flight", s.in_flight},
              {"peak_in_flight", s.peak_in_flight},
              {"streams", s.streams},
              {"streams_completed", s.streams_completed},
              {"cancelled", s.cancelled}};
}

// The /v1/models body: every worker of the trace.
json models_json(const TraceSet& traces) {
  json data = json::array();
  for (std::size_t m = 0; m < traces.n_models(); ++m)
    data.push_back({{"id", traces.model_name[m]}, {"object", "model"}, {"owned_by", traces.model_provider[m]}});
  return json{{"object", "list"}, {"data", data}};
}

// The API key a request carries, in its API's header.
std::string api_key_of(ApiKind api, const HttpRequest& req) {
  if (api == ApiKind::kOpenAI) {
    std::string key = req.header("authorization");
    return key.rfind("Bearer ", 0) == 0 ? key.substr(7) : key;
  }
  return req.header(api == ApiKind::kAnthropic ? "x-api-key" : "x-goog-api-key");
}

// A Gemini endpoint (/v1beta/models/M:generateContent or :streamGenerateContent, also under /v1):
// its model and whether it streams; false for any other path.
bool gemini_endpoint(const std::string& p, std::string& model, bool& stream) {
  for (const std::string suffix : {":generateContent", ":streamGenerateContent"})
    for (const std::string prefix : {"/v1beta/models/", "/v1/models/"})
      if (p.rfind(prefix, 0) == 0 && p.size() > prefix.size() + suffix.size() &&
          p.compare(p.size() - suffix.size(), suffix.size(), suffix) == 0) {
        model = p.substr(prefix.size(), p.size() - prefix.size() - suffix.size());
        stream = suffix == ":streamGenerateContent";
        return true;
      }
  return false;
}

// A non-streamed answer in the API's response shape.
json completion_json(ApiKind api, const std::string& id, const std::string& model, const std::string& text, int in_tok,
                     int out_tok) {
json out;
switch (api) {
    case ApiKind::kOpenAI:
      out = {{"id", "chatcmpl-replay-" + id},
             {"object", "chat.completion"},
             {"created", static_cast<int64_t>(std::time(nullptr))},
             {"model", model},
             {"choices", json::array({{{"index", 0},
                                       {"message", {{"role", "assistant"}, {"content", text}}},
                                       {"finish_reason", "stop"}}})},
             {"usage", {{"prompt_tokens", in_tok}, {"completion_tokens", out_tok}, {"total_tokens", in_tok + out_tok}}}};
      break;
    case ApiKind::kAnthropic:
      out = {{"id", "msg_replay_" + id},
             {"type", "message"},
             {"role", "assistant"},
             {"model", model},
             {"content", json::array({{{"type", "text"}, {"text", text}}})},
             {"stop_reason", "end_turn"},
             {"stop_sequence", nullptr},
             {"usage", {{"input_tokens", in_tok}, {"output_tokens", out_tok}}}};
      break;
    case ApiKind::kGemini:
      out = {{"candidates", json::array({{{"content", {{"parts", json::array({{{"text", text}}})}, {"role", "model"}}},
                                          {"finishReason", "STOP"},
                                          {"index", 0}}})},
             {"usageMetadata",
              {{"promptTokenCount", in_tok}, {"candidatesTokenCount", out_tok}, {"totalTokenCount", in_tok + out_tok}}},
             {"modelVersion", model}};
      break;
  }
  return out;
}

}  // namespace

void ReplayProviders::handle(HttpRequest& req, Responder respond) {
  if (req.path == "/healthz" && req.method == "GET") {
    HttpResponse r;
    r.body = health_json(stats(), options_.api, traces_).dump();
    return respond(std::move(r));
  }
  if ((req.path == "/v1/models" || req.path == "/v1beta/models") && req.method == "GET") {
    HttpResponse r;
    r.body = models_json(traces_).dump();
    return respond(std::move(r));
  }
  // The endpoint of the configured API, and the model it names.
  std::string model;
  bool model_in_path = false;
  bool stream = false;
  switch (options_.api) {
    case ApiKind::kOpenAI:
      if (req.path != "/v1/chat/completions") return respond(api_error(404, "no such endpoint: " + req.path, -1));
      break;
    case ApiKind::kAnthropic:
      if (req.path != "/v1/messages") return respond(api_error(404, "no such endpoint: " + req.path, -1));
      break;
    case ApiKind::kGemini: {
      model_in_path = gemini_endpoint(req.path, model, stream);
      if (!model_in_path) return respond(api_error(404, "no such endpoint: " + req.path, -1));
      if (stream && req.target.find("alt=sse") == std::string::npos)
        return respond(api_error(400, "streamGenerateContent needs ?alt=sse (server-sent events)", -1));
      break;
    }
  }
  if (req.method != "POST") return respond(api_error(405, "use POST on " + req.path, -1));
  if (!options_.require_key.empty()) {
    if (api_key_of(options_.api, req) != options_.require_key) return respond(api_error(401, "invalid or missing API key", -1));
  }
  json j;
  try {
    j = parse_json_body(req.body);
  } catch (const JsonBodyError& e) {
    return respond(api_error(400, e.what(), -1));
  }
  if (!j.is_object()) return respond(api_error(400, "expected a JSON object", -1));
  if (options_.api != ApiKind::kGemini && j.contains("stream")) {
    if (!j["stream"].is_boolean()) return respond(api_error(400, "'stream' must be a boolean", -1));
    stream = j["stream"].get<bool>();
  }
  bool include_usage = false;
  if (j.contains("stream_options") && j["stream_options"].is_object() && j["stream_options"].contains("include_usage"))
    include_usage = j["stream_options"]["include_usage"] == true;
  if (options_.api == ApiKind::kAnthropic) {
    if (req.header("anthropic-version").empty()) return respond(api_error(400, "anthropic-version header is required", -1));
    if (!j.contains("max_tokens") || !j["max_tokens"].is_number_integer())
      return respond(api_error(400, "max_tokens: field required", -1));
  }
  if (!model_in_path) {
    if (!j.contains("model") || !j["model"].is_string()) return respond(api_error(400, "expected a string 'model'", -1));
    model = j["model"].get<std::string>();
  }
  if (options_.api == ApiKind::kGemini ? !j.contains("contents") : !j.contains("messages"))
    return respond(api_error(400, options_.api == ApiKind::kGemini ? "expected 'contents'" : "expected 'messages'", -1));
  const int m = traces_.model_index(model);
  if (m < 0) return respond(api_error(404, "The model '" + model + "' does not exist in this trace", -1));
  const int q = find_query(last_user_text(options_.api, j));
  if (q < 0) return respond(api_error(404, "the last user message matches no query text or id of the trace", -1));

  requests_.fetch_add(1, std::memory_order_relaxed);
  const int now_in = in_flight_.fetch_add(1) + 1;
  for (int p = peak_.load(); now_in > p && !peak_.compare_exchange_weak(p, now_in);) {
  }
  if (fail_[m]) return respond_later(0, api_error(503, "worker '" + model + "' is down (--fail)", -1), std::move(respond));

  const std::size_t at = traces_.at(static_cast<std::size_t>(q), static_cast<std::size_t>(m));
  const float logged_latency = traces_.latency_s[at];
  const double simulated = std::isfinite(logged_latency) ? static_cast<double>(logged_latency) : -1.0;
  const double delay = options_.delay_s >= 0
                           ? options_.delay_s
                           : (simulated >= 0 ? simulated / options_.speedup : 0.0) + add_latency_[m];
  bool inject = false;
  if (options_.fail_rate > 0) {
    std::lock_guard<std::mutex> lk(rng_mu_);
    inject = rng_.uniform() < options_.fail_rate;
  }
  const uint8_t err = traces_.error[at];
  HttpResponse r;
  if (inject) {
    injected_.fetch_add(1, std::memory_order_relaxed);
    r = api_error(500, "injected failure (--fail-rate)", simulated);
  } else if (err == kErrorMissing || (err == kOk && std::isnan(traces_.quality[at]))) {
    r = api_error(404, "no outcome logged for query '" + traces_.query_id[q] + "' on worker '" + model + "'", -1);
  } else if (err == kTimeout) {
    r = api_error(504, "upstream timeout (logged)", simulated);
  } else if (err == kRateLimited) {
    r = api_error(429, "rate limited (logged)", simulated);
  } else if (err == kServerError) {
    r = api_error(options_.api == ApiKind::kAnthropic ? 500 : 500, "server error (logged)", simulated);
  } else {
    const int32_t answer = traces_.answer[at];
    const std::string text = answer >= 0 ? "answer " + std::to_string(answer)
                                         : traces_.query_id[q] + " answered by " + model;
    const int in_tok = std::max(0, traces_.input_tokens[q]);
    const int out_tok = std::max(0, traces_.output_tokens[at]);
    const std::string id = traces_.query_id[q] + "-" + std::to_string(m);
    if (stream) {
      json extra = {{"conductor_answer_id", answer >= 0 ? answer : -1}};
      if (simulated >= 0 && options_.report_latency) extra["conductor_latency_s"] = simulated;
      const std::string sid = (options_.api == ApiKind::kAnthropic ? "msg_replay_" : "chatcmpl-replay-") + id;
      return stream_answer(delay, sid, model, text, in_tok, out_tok, extra, include_usage, req, std::move(respond));
    }
    json out = completion_json(options_.api, id, model, text, in_tok, out_tok);
    out["conductor_answer_id"] = answer >= 0 ? answer : -1;
    if (simulated >= 0 && options_.report_latency) out["conductor_latency_s"] = simulated;
    r.body = out.dump();
  }
  respond_later(delay, std::move(r), std::move(respond), req.cancel.get());
}

}  // namespace conductor::serve
