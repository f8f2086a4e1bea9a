#include "serve/providers.h"

#include <cmath>
#include <cstdlib>
#include <ctime>
#include <utility>

#include "core/error.h"

namespace conductor::serve {

const char* api_name(ApiKind k) {
  switch (k) {
    case ApiKind::kOpenAI: return "openai";
    case ApiKind::kAnthropic: return "anthropic";
    case ApiKind::kGemini: return "gemini";
  }
  return "openai";
}

ApiKind parse_api(const std::string& name) {
  if (name == "openai") return ApiKind::kOpenAI;
  if (name == "anthropic") return ApiKind::kAnthropic;
  if (name == "gemini") return ApiKind::kGemini;
  fail("unknown api '", name, "' (expected openai, anthropic or gemini)");
}

const char* upstream_error_name(UpstreamError e) {
  switch (e) {
    case UpstreamError::kRateLimited: return "rate_limited";
    case UpstreamError::kOverloaded: return "overloaded";
    case UpstreamError::kServerError: return "server_error";
    case UpstreamError::kTimeout: return "timeout";
    case UpstreamError::kBadRequest: return "bad_request";
    case UpstreamError::kAuth: return "auth";
    case UpstreamError::kConnect: return "connect";
    case UpstreamError::kTls: return "tls";
    case UpstreamError::kBadResponse: return "bad_response";
    case UpstreamError::kCircuitOpen: return "circuit_open";
  }
  return "server_error";
}

bool upstream_error_retryable(UpstreamError e) {
  switch (e) {
    case UpstreamError::kRateLimited:
    case UpstreamError::kOverloaded:
    case UpstreamError::kServerError:
    case UpstreamError::kTimeout:
    case UpstreamError::kConnect:
    case UpstreamError::kBadResponse: return true;
    case UpstreamError::kBadRequest:
    case UpstreamError::kAuth:
    case UpstreamError::kTls:
    case UpstreamError::kCircuitOpen: return false;
  }
  return false;
}

double parse_retry_after(const std::string& value) {
  std::size_t b = value.find_first_not_of(" \t"), e = value.find_last_not_of(" \t");
  if (b == std::string::npos) return -1.0;
  const std::string v = value.substr(b, e - b + 1);
  if (v.find_first_not_of("0123456789.") == std::string::npos) {
    char* end = nullptr;
    const double s = std::strtod(v.c_str(), &end);
    if (end && *end == '\0' && std::isfinite(s) && s >= 0) return s;
    return -1.0;
  }
  std::tm tm{};
  const char* rest = strptime(v.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!rest || *rest != '\0') return -1.0;
  const double delta = std::difftime(timegm(&tm), std::time(nullptr));
  return std::max(0.0, delta);
}

namespace {

// Reads an optional integer field (absent or null: -1).
int opt_int(const json& obj, const char* key, const std::string& where) {
  if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) return -1;
  if (!obj[key].is_number_integer())
    fail(where, ": '", key, "' must be an integer, got ", obj[key].dump().substr(0, 40));
  return obj[key].get<int>();
}

const json& field(const json& obj, const char* key, const std::string& where) {
  if (!obj.is_object() || !obj.contains(key))
    fail(where, ": the answer has no '", key, "'");
  return obj[key];
}

void read_extensions(const json& out, ProviderAnswer* a) {
  if (out.contains("conductor_answer_id") && out["conductor_answer_id"].is_number_integer()) {
    a->has_answer_id = true;
    a->answer_id = out["conductor_answer_id"].get<int32_t>();
    if (a->answer_id < 0) a->answer_id = -1;
  }
  if (out.contains("conductor_latency_s") && out["conductor_latency_s"].is_number()) {
    const double l = out["conductor_latency_s"].get<double>();
    if (std::isfinite(l) && l >= 0) a->simulated_latency_s = l;
  }
}

// The text of the chat messages, by role, in order: what every adapter starts from.
struct Turn {
  std::string role;  // "system" | "user" | "assistant"
  std::string text;
};

std::vector<Turn> turns_of(const json& request) {
  std::vector<Turn> out;
  for (const auto& m : request.at("messages")) {
    std::string role = m.at("role").get<std::string>();
    if (role == "developer") role = "system";
    if (role != "system" && role != "user" && role != "assistant")
      throw RequestRefused("message role '" + role + "' cannot be sent to this provider (use system, user or assistant)");
    out.push_back({role, m.at("content").get<std::string>()});
  }
  return out;
}

// What the OpenAI format accepts and Anthropic's Messages and Gemini's generateContent do not: a
// conversation whose first non-system turn is the assistant's, or one with system turns only.
// Fixed up the way other gateways do, so the request is not refused for its shape: system turns
// only -> their text becomes the user turn (and no separate system prompt is sent); an assistant
// turn first -> a user turn kContinueTurn is put before it.
constexpr const char* kContinueTurn = "Continue.";
std::vector<Turn> user_first_turns(const json& request) {
  std::vector<Turn> turns = turns_of(request);
  std::size_t first = 0;
  while (first < turns.size() && turns[first].role == "system") ++first;
  if (first == turns.size()) {
    std::string text;
    for (const Turn& t : turns) text += (text.empty() ? "" : "\n\n") + t.text;
    return {{"user", text}};
  }
  if (turns[first].role == "assistant") turns.insert(turns.begin() + static_cast<std::ptrdiff_t>(first), {"user", kContinueTurn});
  return turns;
}

int max_tokens_of(const json& request) {
  for (const char* k : {"max_completion_tokens", "max_tokens"})
    if (request.contains(k) && request[k].is_number_integer() && request[k].get<int64_t>() > 0)
      return static_cast<int>(std::min<int64_t>(request[k].get<int64_t>(), 1 << 30));
  return -1;
}

std::vector<std::string> stops_of(const json& request) {
  std::vector<std::string> out;
  if (!request.contains("stop")) return out;
  const json& s = request["stop"];
  if (s.is_string()) out.push_back(s.get<std::string>());
  else if (s.is_array())
    for (const auto& x : s)
      if (x.is_string()) out.push_back(x.get<std::string>());
  return out;
}

std::string anthropic_stop_reason(const std::string& s) {
  return s == "max_tokens" ? "length" : s == "refusal" ? "content_filter" : s == "tool_use" ? "tool_calls" : "stop";
}

// A Gemini GenerateContentResponse (a whole answer, or one event of a stream): appends the text
// of candidates[0] to a->text (and to `pieces` when streaming), the finish reason and usage.
void read_gemini_response(const json& out, const std::string& where, ProviderAnswer* a, std::vector<std::string>* pieces) {
  if (!out.is_object()) fail(where, ": expected a JSON object");
  if (!out.contains("candidates") || !out["candidates"].is_array() || out["candidates"].empty()) {
    if (out.contains("promptFeedback") && out["promptFeedback"].is_object() &&
        out["promptFeedback"].contains("blockReason") && out["promptFeedback"]["blockReason"].is_string())
      throw RequestRefused(where + ": the prompt was blocked (" + out["promptFeedback"]["blockReason"].get<std::string>() + ")");
    // A stream's last event may carry only the usage.
    if (!pieces || !out.contains("usageMetadata")) fail(where, ": no candidates");
  } else {
    const json& cand = out["candidates"][0];
    if (cand.contains("content") && cand["content"].is_object() && cand["content"].contains("parts") &&
        cand["content"]["parts"].is_array()) {
      for (const auto& p : cand["content"]["parts"])
        if (p.is_object() && p.contains("text") && p["text"].is_string()) {
          const std::string t = p["text"].get<std::string>();
          a->text += t;
          if (pieces && !t.empty()) pieces->push_back(t);
        }
    } else if (!cand.contains("finishReason")) {
      fail(where, ": candidates[0] has no content");
    }
    if (cand.contains("finishReason") && cand["finishReason"].is_string()) {
      const std::string f = cand["finishReason"].get<std::string>();
      a->stop_reason = f == "STOP" ? "stop" : f == "MAX_TOKENS" ? "length" : "content_filter";
    }
  }
  if (out.contains("usageMetadata") && out["usageMetadata"].is_object()) {
    a->prompt_tokens = opt_int(out["usageMetadata"], "promptTokenCount", where);
    a->completion_tokens = opt_int(out["usageMetadata"], "candidatesTokenCount", where);
  }
  read_extensions(out, a);
}

// The provider's error object ({"error": {...}} of a body or a stream event) refines `e`.
void refine_from_error(const json& err, ClassifiedError* e) {
  if (err.contains("message") && err["message"].is_string()) e->message = err["message"].get<std::string>().substr(0, 300);
  const std::string type = err.contains("type") && err["type"].is_string() ? err["type"].get<std::string>() : "";
  const std::string code = err.contains("code") && err["code"].is_string() ? err["code"].get<std::string>() : "";
  const std::string status = err.contains("status") && err["status"].is_string() ? err["status"].get<std::string>() : "";
  if (type == "overloaded_error" || status == "UNAVAILABLE") e->kind = UpstreamError::kOverloaded;
  else if (type == "rate_limit_error" || status == "RESOURCE_EXHAUSTED") e->kind = UpstreamError::kRateLimited;
  else if (status == "DEADLINE_EXCEEDED") e->kind = UpstreamError::kTimeout;
  else if (type == "authentication_error" || type == "permission_error" || status == "UNAUTHENTICATED" ||
           status == "PERMISSION_DENIED")
    e->kind = UpstreamError::kAuth;
  e->retryable = upstream_error_retryable(e->kind);
  // OpenAI answers 429 when the account's quota is spent: waiting does not help.
  if (code == "insufficient_quota" || type == "insufficient_quota") e->retryable = false;
  // Gemini: google.rpc.RetryInfo {"retryDelay": "12s"} in error.details.
  if (e->retry_after_s < 0 && err.contains("details") && err["details"].is_array())
    for (const auto& d : err["details"])
      if (d.is_object() && d.contains("retryDelay") && d["retryDelay"].is_string()) {
        std::string v = d["retryDelay"].get<std::string>();
        if (!v.empty() && v.back() == 's') v.pop_back();
        e->retry_after_s = parse_retry_after(v);
      }
}

// An error event in a stream: a server error unless its error object says otherwise.
[[noreturn]] void stream_error(const json& err, const std::string& where) {
  ClassifiedError e;
  e.kind = UpstreamError::kServerError;
  e.retryable = true;
  if (err.is_object()) refine_from_error(err, &e);
  if (e.message.empty()) e.message = where + ": error event";
  throw StreamFailure(e);
}

class OpenAIAdapter : public ProviderAdapter {
 public:
  ApiKind api() const override { return ApiKind::kOpenAI; }
  ClientRequest build(const json& request, const std::string& model, const std::string& key) const override {
    return make(request, model, key, false);
  }
  ClientRequest build_stream(const json& request, const std::string& model, const std::string& key) const override {
    return make(request, model, key, true);
  }
  std::unique_ptr<StreamReader> stream_reader() const override;
  ProviderAnswer parse(const std::string& body) const override {
    const json out = parse_json(body, "openai answer");
    const std::string where = "openai answer";
    const json& choices = field(out, "choices", where);
    if (!choices.is_array() || choices.empty()) fail(where, ": 'choices' is empty");
    const json& msg = field(choices[0], "message", where);
    ProviderAnswer a;
    const json& content = field(msg, "content", where);
    if (!content.is_string()) fail(where, ": choices[0].message.content is not a string");
    a.text = content.get<std::string>();
    if (choices[0].contains("finish_reason") && choices[0]["finish_reason"].is_string())
      a.stop_reason = choices[0]["finish_reason"].get<std::string>();
    if (out.contains("usage") && out["usage"].is_object()) {
      a.prompt_tokens = opt_int(out["usage"], "prompt_tokens", where);
      a.completion_tokens = opt_int(out["usage"], "completion_tokens", where);
    }
    read_extensions(out, &a);
    return a;
  }

 private:
  static ClientRequest make(const json& request, const std::string& model, const std::string& key, bool stream) {
    json body = request;
    body.erase("conductor");
    body["model"] = model;
    body["stream"] = stream;
    if (stream) body["stream_options"] = {{"include_usage", true}};
    else body.erase("stream_options");
    ClientRequest r;
    r.target = "/chat/completions";
    r.body = body.dump();
    if (!key.empty()) r.headers.emplace_back("Authorization", "Bearer " + key);
    return r;
  }
};

class AnthropicAdapter : public ProviderAdapter {
 public:
  explicit AnthropicAdapter(AdapterOptions o) : o_(std::move(o)) {}
  ApiKind api() const override { return ApiKind::kAnthropic; }
  ClientRequest build(const json& request, const std::string& model, const std::string& key) const override {
    return make(request, model, key, false);
  }
  ClientRequest build_stream(const json& request, const std::string& model, const std::string& key) const override {
    return make(request, model, key, true);
  }
  std::unique_ptr<StreamReader> stream_reader() const override;
  ProviderAnswer parse(const std::string& body) const override {
    const std::string where = "anthropic answer";
    const json out = parse_json(body, where);
    const json& content = field(out, "content", where);
    if (!content.is_array()) fail(where, ": 'content' is not an array of blocks");
    ProviderAnswer a;
    for (const auto& block : content)
      if (block.is_object() && block.value("type", "") == "text" && block.contains("text") && block["text"].is_string())
        a.text += block["text"].get<std::string>();
    if (out.contains("stop_reason") && out["stop_reason"].is_string())
      a.stop_reason = anthropic_stop_reason(out["stop_reason"].get<std::string>());
    if (out.contains("usage") && out["usage"].is_object()) {
      a.prompt_tokens = opt_int(out["usage"], "input_tokens", where);
      a.completion_tokens = opt_int(out["usage"], "output_tokens", where);
    }
    read_extensions(out, &a);
    return a;
  }

 private:
  ClientRequest make(const json& request, const std::string& model, const std::string& key, bool stream) const {
    std::string system;
    json messages = json::array();
    for (const Turn& t : user_first_turns(request)) {
      if (t.role == "system") {
        system += (system.empty() ? "" : "\n\n") + t.text;
        continue;
      }
      if (!messages.empty() && messages.back()["role"] == t.role) {
        messages.back()["content"] = messages.back()["content"].get<std::string>() + "\n\n" + t.text;
      } else {
        messages.push_back({{"role", t.role}, {"content", t.text}});
      }
    }
    const int mt = max_tokens_of(request);
    json body = {{"model", model}, {"max_tokens", mt > 0 ? mt : o_.default_max_tokens}, {"messages", messages}};
    if (!system.empty()) body["system"] = system;
    if (request.contains("temperature") && request["temperature"].is_number()) body["temperature"] = request["temperature"];
    if (request.contains("top_p") && request["top_p"].is_number()) body["top_p"] = request["top_p"];
    const auto stops = stops_of(request);
    if (!stops.empty()) body["stop_sequences"] = stops;
    if (stream) body["stream"] = true;
    ClientRequest r;
    r.target = "/messages";
    r.body = body.dump();
    if (!key.empty()) r.headers.emplace_back("x-api-key", key);
    r.headers.emplace_back("anthropic-version", o_.anthropic_version);
    return r;
  }
  AdapterOptions o_;
};

class GeminiAdapter : public ProviderAdapter {
 public:
  ApiKind api() const override { return ApiKind::kGemini; }
  ClientRequest build(const json& request, const std::string& model, const std::string& key) const override {
    return make(request, model, key, false);
  }
  ClientRequest build_stream(const json& request, const std::string& model, const std::string& key) const override {
    return make(request, model, key, true);
  }
  std::unique_ptr<StreamReader> stream_reader() const override;
  ProviderAnswer parse(const std::string& body) const override {
    const std::string where = "gemini answer";
    ProviderAnswer a;
    read_gemini_response(parse_json(body, where), where, &a, nullptr);
    return a;
  }

 private:
  static ClientRequest make(const json& request, const std::string& model, const std::string& key, bool stream) {
    std::string system;
    json contents = json::array();
    for (const Turn& t : user_first_turns(request)) {
      if (t.role == "system") {
        system += (system.empty() ? "" : "\n\n") + t.text;
        continue;
      }
      const std::string role = t.role == "assistant" ? "model" : "user";
      if (!contents.empty() && contents.back()["role"] == role) {
        contents.back()["parts"].push_back({{"text", t.text}});
      } else {
        contents.push_back({{"role", role}, {"parts", json::array({{{"text", t.text}}})}});
      }
    }
    json body = {{"contents", contents}};
    if (!system.empty()) body["systemInstruction"] = {{"parts", json::array({{{"text", system}}})}};
    json gen = json::object();
    const int mt = max_tokens_of(request);
    if (mt > 0) gen["maxOutputTokens"] = mt;
    if (request.contains("temperature") && request["temperature"].is_number()) gen["temperature"] = request["temperature"];
    if (request.contains("top_p") && request["top_p"].is_number()) gen["topP"] = request["top_p"];
    const auto stops = stops_of(request);
    if (!stops.empty()) gen["stopSequences"] = stops;
    if (!gen.empty()) body["generationConfig"] = gen;
    std::string m = model;
    if (m.rfind("models/", 0) == 0) m = m.substr(7);
    ClientRequest r;
    r.target = "/models/" + m + (stream ? ":streamGenerateContent?alt=sse" : ":generateContent");
    r.body = body.dump();
    if (!key.empty()) r.headers.emplace_back("x-goog-api-key", key);
    return r;
  }
};


class OpenAIStreamReader : public StreamReader {
 protected:
  const char* where() const override { return "openai stream"; }
  bool complete() const override { return done_ || !answer_.stop_reason.empty(); }
  void on_event(const std::string&, const std::string& data, std::vector<std::string>* text) override {
    if (data == "[DONE]") {
      done_ = true;
      return;
    }
    const json chunk = parse_json(data, where());
    if (!chunk.is_object()) fail(where(), ": an event is not a JSON object");
    if (chunk.contains("error")) stream_error(chunk["error"], where());
    if (chunk.contains("choices") && chunk["choices"].is_array() && !chunk["choices"].empty()) {
      const json& c = chunk["choices"][0];
      if (c.contains("delta") && c["delta"].is_object() && c["delta"].contains("content") &&
          c["delta"]["content"].is_string()) {
        const std::string t = c["delta"]["content"].get<std::string>();
        answer_.text += t;
        if (!t.empty()) text->push_back(t);
      }
      if (c.contains("finish_reason") && c["finish_reason"].is_string())
        answer_.stop_reason = c["finish_reason"].get<std::string>();
    }
    if (chunk.contains("usage") && chunk["usage"].is_object()) {
      answer_.prompt_tokens = opt_int(chunk["usage"], "prompt_tokens", where());
      answer_.completion_tokens = opt_int(chunk["usage"], "completion_tokens", where());
    }
    read_extensions(chunk, &answer_);
  }

 private:
  bool done_ = false;
};

class AnthropicStreamReader : public StreamReader {
 protected:
  const char* where() const override { return "anthropic stream"; }
  bool complete() const override { return stopped_; }
  void on_event(const std::string& event, const std::string& data, std::vector<std::string>* text) override {
    const json e = parse_json(data, where());
    if (!e.is_object()) fail(where(), ": an event is not a JSON object");
    const std::string type = e.contains("type") && e["type"].is_string() ? e["type"].get<std::string>() : event;
    if (type == "error") stream_error(e.contains("error") ? e["error"] : json(), where());
    if (type == "message_start" && e.contains("message") && e["message"].is_object() &&
        e["message"].contains("usage") && e["message"]["usage"].is_object()) {
      answer_.prompt_tokens = opt_int(e["message"]["usage"], "input_tokens", where());
    } else if (type == "content_block_delta" && e.contains("delta") && e["delta"].is_object() &&
               e["delta"].value("type", "") == "text_delta" && e["delta"].contains("text") &&
               e["delta"]["text"].is_string()) {
      const std::string t = e["delta"]["text"].get<std::string>();
      answer_.text += t;
      if (!t.empty()) text->push_back(t);
    } else if (type == "message_delta") {
      if (e.contains("delta") && e["delta"].is_object() && e["delta"].contains("stop_reason") &&
          e["delta"]["stop_reason"].is_string())
        answer_.stop_reason = anthropic_stop_reason(e["delta"]["stop_reason"].get<std::string>());
      if (e.contains("usage") && e["usage"].is_object()) {
        const int out = opt_int(e["usage"], "output_tokens", where());
        if (out >= 0) answer_.completion_tokens = out;
        // Cumulative usage at the end (newer API versions and this gateway's own door) wins.
        const int in = opt_int(e["usage"], "input_tokens", where());
        if (in > 0) answer_.prompt_tokens = in;
      }
    } else if (type == "message_stop") {
      stopped_ = true;
    }
    read_extensions(e, &answer_);
  }

 private:
  bool stopped_ = false;
};

class GeminiStreamReader : public StreamReader {
 protected:
  const char* where() const override { return "gemini stream"; }
  bool complete() const override { return !answer_.stop_reason.empty(); }
  void on_event(const std::string&, const std::string& data, std::vector<std::string>* text) override {
    const json e = parse_json(data, where());
    if (e.is_object() && e.contains("error")) stream_error(e["error"], where());
    read_gemini_response(e, where(), &answer_, text);
  }
};

std::unique_ptr<StreamReader> OpenAIAdapter::stream_reader() const { return std::make_unique<OpenAIStreamReader>(); }
std::unique_ptr<StreamReader> AnthropicAdapter::stream_reader() const {
  return std::make_unique<AnthropicStreamReader>();
}
std::unique_ptr<StreamReader> GeminiAdapter::stream_reader() const { return std::make_unique<GeminiStreamReader>(); }

}  // namespace

void StreamReader::feed(const std::string& bytes, std::vector<std::string>* text) {
  std::size_t start = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] != '\n') continue;
    std::string line = partial_ + bytes.substr(start, i - start);
    partial_.clear();
    if (!line.empty() && line.back() == '\r') line.pop_back();
    on_line(std::move(line), text);
    start = i + 1;
  }
  partial_ += bytes.substr(start);
  if (partial_.size() > (16u << 20)) fail(where(), ": an event line longer than 16 MB");
}

void StreamReader::on_line(std::string line, std::vector<std::string>* text) {
  if (line.empty()) {  // end of an event
    if (has_data_) on_event(event_, data_, text);
    event_.clear();
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line[0] == ':') return;  // a comment (keep-alive)
  const auto colon = line.find(':');
  const std::string name = line.substr(0, colon);
  std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
  if (!value.empty() && value[0] == ' ') value.erase(0, 1);
  if (name == "data") {
    if (has_data_) data_ += '\n';
    data_ += value;
    has_data_ = true;
  } else if (name == "event") {
    event_ = value;
  }
}

ProviderAnswer StreamReader::finish() {
  std::vector<std::string> ignored;
  if (!partial_.empty()) on_line(std::exchange(partial_, std::string()), &ignored);
  on_line("", &ignored);
  if (!complete()) fail(where(), ": the stream ended before the answer was complete");
  return answer_;
}

ClassifiedError ProviderAdapter::classify(const ClientResponse& r) const {
  ClassifiedError e;
  const int s = r.status;
  if (s == 429) e.kind = UpstreamError::kRateLimited;
  else if (s == 529 || s == 503) e.kind = UpstreamError::kOverloaded;
  else if (s == 504 || s == 408) e.kind = UpstreamError::kTimeout;
  else if (s == 401 || s == 403) e.kind = UpstreamError::kAuth;
  else if (s >= 500) e.kind = UpstreamError::kServerError;
  else e.kind = UpstreamError::kBadRequest;
  e.retryable = upstream_error_retryable(e.kind);
  e.retry_after_s = parse_retry_after(r.header("retry-after"));
  // The providers' error bodies refine the status.
  json body;
  try {
    body = json::parse(r.body);
  } catch (const json::exception&) {
  }
  if (body.is_object() && body.contains("error") && body["error"].is_object()) refine_from_error(body["error"], &e);
  if (e.message.empty()) e.message = "HTTP " + std::to_string(s);
  return e;
}

std::unique_ptr<ProviderAdapter> make_adapter(ApiKind api, const AdapterOptions& options) {
  switch (api) {
    case ApiKind::kOpenAI: return std::make_unique<OpenAIAdapter>();
    case ApiKind::kAnthropic: return std::make_unique<AnthropicAdapter>(options);
    case ApiKind::kGemini: return std::make_unique<GeminiAdapter>();
  }
  return std::make_unique<OpenAIAdapter>();
}

}  // namespace conductor::serve
