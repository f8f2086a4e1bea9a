#include "serve/replay_server.h"

#include <cmath>
#include <ctime>

#include "core/json_util.h"

namespace conductor::serve {

ReplayProviders::ReplayProviders(TraceSet traces, ReplayOptions options)
    : traces_(std::move(traces)), options_(std::move(options)) {
  if (!(options_.speedup > 0) || !std::isfinite(options_.speedup))
    fail("replay-server: --speedup must be a positive number, got ", options_.speedup);
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
    const int m = traces_.model_index(w);
    if (m < 0) fail("replay-server: --add-latency names unknown worker '", w, "' (workers of the trace: ", known(), ")");
    if (!(s >= 0) || !std::isfinite(s)) fail("replay-server: --add-latency ", w, "=", s, ": expected seconds >= 0");
    add_latency_[m] = s;
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

void ReplayProviders::handle(HttpRequest& req, Responder respond) {
  if (req.path == "/healthz" && req.method == "GET") {
    HttpResponse r;
    r.body = json{{"status", "ok"}, {"workers", traces_.model_name}, {"queries", traces_.n_queries()}}.dump();
    return respond(std::move(r));
  }
  if (req.path == "/v1/models" && req.method == "GET") {
    json data = json::array();
    for (std::size_t m = 0; m < traces_.n_models(); ++m)
      data.push_back({{"id", traces_.model_name[m]}, {"object", "model"}, {"owned_by", traces_.model_provider[m]}});
    HttpResponse r;
    r.body = json{{"object", "list"}, {"data", data}}.dump();
    return respond(std::move(r));
  }
  if (req.path != "/v1/chat/completions") throw HttpError(404, "no such endpoint: " + req.path, "not_found");
  if (req.method != "POST") throw HttpError(405, "use POST on /v1/chat/completions");
  json j;
  try {
    j = json::parse(req.body);
  } catch (const json::parse_error& e) {
    throw HttpError(400, "request body is not valid JSON (byte " + std::to_string(e.byte) + ")");
  }
  if (!j.is_object() || !j.contains("model") || !j["model"].is_string())
    throw HttpError(400, "expected a JSON object with a string 'model'");
  if (!j.contains("messages") || !j["messages"].is_array())
    throw HttpError(400, "expected 'messages': an array of {role, content}");
  const std::string model = j["model"].get<std::string>();
  const int m = traces_.model_index(model);
  if (m < 0) throw HttpError(404, "The model '" + model + "' does not exist in this trace", "model_not_found");
  std::string content;
  for (const auto& msg : j["messages"])
    if (msg.is_object() && msg.value("role", "") == "user" && msg.contains("content") && msg["content"].is_string())
      content = msg["content"].get<std::string>();
  const int q = find_query(content);
  if (q < 0) throw HttpError(404, "the last user message matches no query text or id of the trace", "query_not_found");

  if (fail_[m]) return respond(json_error(503, "worker '" + model + "' is down (--fail)", "service_unavailable"));

  const std::size_t at = traces_.at(static_cast<std::size_t>(q), static_cast<std::size_t>(m));
  const float logged_latency = traces_.latency_s[at];
  const double delay =
      (std::isfinite(logged_latency) ? static_cast<double>(logged_latency) / options_.speedup : 0.0) + add_latency_[m];
  const uint8_t err = traces_.error[at];
  HttpResponse r;
  if (err == kErrorMissing || (err == kOk && std::isnan(traces_.quality[at]))) {
    r = json_error(404, "no outcome logged for query '" + traces_.query_id[q] + "' on worker '" + model + "'",
                   "not_logged");
  } else if (err == kTimeout) {
    r = json_error(504, "upstream timeout (logged)", "timeout");
  } else if (err == kRateLimited) {
    r = json_error(429, "rate limited (logged)", "rate_limit_exceeded");
  } else if (err == kServerError) {
    r = json_error(500, "server error (logged)", "server_error");
  } else {
    const int32_t answer = traces_.answer[at];
    const std::string text = answer >= 0 ? "answer " + std::to_string(answer)
                                         : traces_.query_id[q] + " answered by " + model;
    const int in_tok = std::max(0, traces_.input_tokens[q]);
    const int out_tok = std::max(0, traces_.output_tokens[at]);
    json out = {{"id", "chatcmpl-replay-" + traces_.query_id[q] + "-" + std::to_string(m)},
                {"object", "chat.completion"},
                {"created", static_cast<int64_t>(std::time(nullptr))},
                {"model", model},
                {"choices", json::array({{{"index", 0},
                                          {"message", {{"role", "assistant"}, {"content", text}}},
                                          {"finish_reason", "stop"}}})},
                {"usage", {{"prompt_tokens", in_tok}, {"completion_tokens", out_tok}, {"total_tokens", in_tok + out_tok}}}};
    if (answer >= 0) out["conductor_answer_id"] = answer;
    r.body = out.dump();
  }
  if (delay <= 0 || !server_) return respond(std::move(r));
  server_->run_after(delay, [respond = std::move(respond), r = std::move(r)]() mutable { respond(std::move(r)); });
}

}  // namespace conductor::serve
