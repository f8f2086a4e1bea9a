#include "serve/sse.h"

#include <ctime>

namespace conductor::serve {

std::string sse_event(const std::string& payload, const std::string& event) {
  std::string out;
  if (!event.empty()) out += "event: " + event + "\n";
  out += "data: " + payload + "\n\n";
  return out;
}

std::string anthropic_stop_reason_of(const std::string& r) {
  if (r == "length") return "max_tokens";
  if (r == "tool_calls") return "tool_use";
  if (r == "content_filter") return "refusal";
  return "end_turn";
}

HttpResponse client_error(ApiKind api, int status, const std::string& message, const std::string& type) {
  if (api != ApiKind::kAnthropic) return json_error(status, message, type);
  HttpResponse r;
  r.status = status;
  std::string t = status == 401 ? "authentication_error"
                  : status == 403 ? "permission_error"
                  : status == 404 ? "not_found_error"
                  : status == 429 ? "rate_limit_error"
                  : status == 503 || status == 529 ? "overloaded_error"
                  : status >= 400 && status < 500 ? "invalid_request_error"
                                                  : "api_error";
  r.body = json{{"type", "error"}, {"error", {{"type", t}, {"message", message}}}}.dump();
  return r;
}

namespace {

void merge(json* into, const json& extra) {
  if (extra.is_object())
    for (const auto& [k, v] : extra.items()) (*into)[k] = v;
}

long nonneg(long v) { return v < 0 ? 0 : v; }

class OpenAISse : public SseEncoder {
 public:
  OpenAISse(std::string id, std::string model, bool usage)
      : id_(std::move(id)), model_(std::move(model)), usage_(usage), created_(static_cast<int64_t>(std::time(nullptr))) {}
  std::string begin() override {
    return sse_event(chunk({{"role", "assistant"}, {"content", ""}}, nullptr).dump());
  }
  std::string delta(const std::string& text) override { return sse_event(chunk({{"content", text}}, nullptr).dump()); }
  std::string end(const std::string& stop, long in, long out, const json& extra) override {
    json last = chunk(json::object(), stop.empty() ? "stop" : stop);
    std::string s;
    if (usage_) {
      s += sse_event(last.dump());
      last = chunk_base();
      last["choices"] = json::array();
      last["usage"] = {{"prompt_tokens", nonneg(in)}, {"completion_tokens", nonneg(out)},
                       {"total_tokens", nonneg(in) + nonneg(out)}};
    }
    merge(&last, extra);
    s += sse_event(last.dump());
    return s + "data: [DONE]\n\n";
  }
  std::string error(const std::string& message, const std::string& type, int status) override {
    return sse_event(json{{"error", {{"message", message}, {"type", type}, {"code", status}}}}.dump()) +
           "data: [DONE]\n\n";
  }

 private:
  json chunk_base() const {
    return {{"id", id_}, {"object", "chat.completion.chunk"}, {"created", created_}, {"model", model_}};
  }
  json chunk(json delta, json finish) const {
    json c = chunk_base();
    c["choices"] = json::array({{{"index", 0}, {"delta", std::move(delta)}, {"finish_reason", std::move(finish)}}});
    return c;
  }
  std::string id_, model_;
  bool usage_;
  int64_t created_;
};

class AnthropicSse : public SseEncoder {
 public:
  AnthropicSse(std::string id, std::string model) : id_(std::move(id)), model_(std::move(model)) {}
  // The tokens are known at the end: message_delta carries them.
  std::string begin() override {
    json msg = {{"id", id_},
                {"type", "message"},
                {"role", "assistant"},
                {"model", model_},
                {"content", json::array()},
                {"stop_reason", nullptr},
                {"stop_sequence", nullptr},
                {"usage", {{"input_tokens", 0}, {"output_tokens", 0}}}};
    return sse_event(json{{"type", "message_start"}, {"message", msg}}.dump(), "message_start") +
           sse_event(json{{"type", "content_block_start"}, {"index", 0}, {"content_block", {{"type", "text"}, {"text", ""}}}}
                         .dump(),
                     "content_block_start") +
           sse_event(R"({"type": "ping"})", "ping");
  }
  std::string delta(const std::string& text) override {
    return sse_event(
        json{{"type", "content_block_delta"}, {"index", 0}, {"delta", {{"type", "text_delta"}, {"text", text}}}}.dump(),
        "content_block_delta");
  }
  std::string end(const std::string& stop, long in, long out, const json& extra) override {
    json md = {{"type", "message_delta"},
               {"delta", {{"stop_reason", anthropic_stop_reason_of(stop)}, {"stop_sequence", nullptr}}},
               {"usage", {{"input_tokens", nonneg(in)}, {"output_tokens", nonneg(out)}}}};
    merge(&md, extra);
    return sse_event(json{{"type", "content_block_stop"}, {"index", 0}}.dump(), "content_block_stop") +
           sse_event(md.dump(), "message_delta") + sse_event(R"({"type": "message_stop"})", "message_stop");
  }
  std::string error(const std::string& message, const std::string&, int status) override {
    const char* t = status == 429 ? "rate_limit_error" : status == 529 || status == 503 ? "overloaded_error"
                    : status == 400                    ? "invalid_request_error"
                                                       : "api_error";
    return sse_event(json{{"type", "error"}, {"error", {{"type", t}, {"message", message}}}}.dump(), "error");
  }

 private:
  std::string id_, model_;
};

class GeminiSse : public SseEncoder {
 public:
  explicit GeminiSse(std::string model) : model_(std::move(model)) {}
  std::string begin() override { return ""; }
  std::string delta(const std::string& text) override { return sse_event(event(text, nullptr).dump()); }
  std::string end(const std::string& stop, long in, long out, const json& extra) override {
    json e = event("", stop == "length" ? "MAX_TOKENS" : stop == "content_filter" ? "SAFETY" : "STOP");
    e["usageMetadata"] = {{"promptTokenCount", nonneg(in)}, {"candidatesTokenCount", nonneg(out)},
                          {"totalTokenCount", nonneg(in) + nonneg(out)}};
    merge(&e, extra);
    return sse_event(e.dump());
  }
  std::string error(const std::string& message, const std::string&, int status) override {
    const char* st = status == 429 ? "RESOURCE_EXHAUSTED" : status == 503 ? "UNAVAILABLE" : status == 504 ? "DEADLINE_EXCEEDED"
                                                                                                         : "INTERNAL";
    return sse_event(json{{"error", {{"code", status}, {"message", message}, {"status", st}}}}.dump());
  }

 private:
  json event(const std::string& text, json finish) const {
    json cand = {{"content", {{"parts", json::array({{{"text", text}}})}, {"role", "model"}}}, {"index", 0}};
    if (!finish.is_null()) cand["finishReason"] = finish;
    return {{"candidates", json::array({cand})}, {"modelVersion", model_}};
  }
  std::string model_;
};

}  // namespace

std::unique_ptr<SseEncoder> make_sse_encoder(ApiKind api, const std::string& id, const std::string& model,
                                             bool include_usage) {
  switch (api) {
    case ApiKind::kOpenAI: return std::make_unique<OpenAISse>(id, model, include_usage);
    case ApiKind::kAnthropic: return std::make_unique<AnthropicSse>(id, model);
    case ApiKind::kGemini: return std::make_unique<GeminiSse>(model);
  }
  return std::make_unique<OpenAISse>(id, model, include_usage);
}

}  // namespace conductor::serve
