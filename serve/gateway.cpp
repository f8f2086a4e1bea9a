#include "serve/gateway.h"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <thread>

#include "traces/tokens.h"
#include "traces/trace_set.h"

namespace conductor::serve {

namespace {

std::string fmt_g(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

std::string type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "a number";
}

[[noreturn]] void bad(const std::string& msg) { throw HttpError(400, msg); }

// Normalized answer text for agreement between workers that give no answer class.
std::string normalize_answer(const std::string& s) {
  std::string out;
  bool space = false;
  for (unsigned char c : s) {
    if (std::isspace(c)) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(static_cast<char>(std::tolower(c)));
  }
  return out;
}

}  // namespace

ProviderConfig ProviderConfig::parse(ConfigReader r) {
  ProviderConfig p;
  p.worker = r.required<std::string>("worker");
  p.base_url = r.required<std::string>("base_url");
  try {
    parse_url(p.base_url);
  } catch (const Error& e) {
    r.fail_at("base_url", e.what());
  }
  p.model = r.get<std::string>("model", p.worker);
  p.api_key_env = r.get<std::string>("api_key_env", "");
  p.timeout_s = r.get_in<double>("timeout_s", 0.0, 0.0, 3600.0);
  r.finish();
  return p;
}

GatewayConfig GatewayConfig::parse(ConfigReader r) {
  GatewayConfig c;
  c.threads = r.get_in<int>("threads", 16, 1, 1024);
  c.call_timeout_s = r.get_in<double>("call_timeout_s", 30.0, 0.001, 3600.0);
  c.retries = r.get_in<int>("retries", 1, 0, 10);
  c.backoff_initial_s = r.get_in<double>("backoff_initial_s", 0.1, 0.0, 60.0);
  c.backoff_multiplier = r.get_in<double>("backoff_multiplier", 2.0, 1.0, 10.0);
  for (auto& p : r.child_list("providers")) c.providers.push_back(ProviderConfig::parse(p));
  if (c.providers.empty()) r.fail_at("providers", "the gateway needs at least one provider");
  r.finish();
  return c;
}

struct Gateway::Impl {
  explicit Impl(int threads) : pool(static_cast<std::size_t>(threads)) {}
  boost::asio::thread_pool pool;
  std::atomic<uint64_t> next_id{1};
};

Gateway::Gateway(std::shared_ptr<const Router> router, GatewayConfig config)
    : router_(std::move(router)), config_(std::move(config)) {
  const auto& workers = router_->world().workers();
  provider_of_worker_.assign(workers.size(), -1);
  for (std::size_t i = 0; i < config_.providers.size(); ++i) {
    const ProviderConfig& pc = config_.providers[i];
    const std::string where = "gateway.providers[" + std::to_string(i) + "]";
    const int w = router_->worker_index(pc.worker);
    if (w < 0) {
      std::string known;
      for (const auto& n : workers) known += (known.empty() ? "" : ", ") + n;
      fail(where, ": worker '", pc.worker, "' is not a worker of the exported policy (known: ", known, ")");
    }
    if (provider_of_worker_[w] >= 0) fail(where, ": worker '", pc.worker, "' is listed twice");
    Provider p;
    p.worker = w;
    p.url = parse_url(pc.base_url);
    p.model = pc.model;
    p.timeout_s = pc.timeout_s > 0 ? pc.timeout_s : config_.call_timeout_s;
    if (!pc.api_key_env.empty()) {
      const char* v = std::getenv(pc.api_key_env.c_str());
      if (!v || !*v)
        fail(where, ": api_key_env names the environment variable '", pc.api_key_env, "', which is not set");
      p.api_key = v;
    }
    provider_of_worker_[w] = static_cast<int>(providers_.size());
    providers_.push_back(std::move(p));
  }
  impl_ = std::make_unique<Impl>(config_.threads);
}

Gateway::~Gateway() { impl_->pool.join(); }

void Gateway::handle(HttpRequest& req, Responder respond) {
  json j;
  try {
    j = json::parse(req.body);
  } catch (const json::parse_error& e) {
    bad("request body is not valid JSON (byte " + std::to_string(e.byte) + ")");
  }
  if (!j.is_object()) bad("request body must be a JSON object, got " + type_name(j));
  if (!j.contains("messages")) bad("missing field 'messages' (an array of {role, content})");
  const json& msgs = j["messages"];
  if (!msgs.is_array() || msgs.empty()) bad("'messages' must be a non-empty array, got " + type_name(msgs));
  bool has_user = false;
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    const json& m = msgs[i];
    const std::string at = "'messages[" + std::to_string(i) + "]";
    if (!m.is_object()) bad(at + "' must be an object, got " + type_name(m));
    if (!m.contains("role") || !m["role"].is_string()) bad(at + ".role' must be a string");
    if (!m.contains("content") || !m["content"].is_string()) bad(at + ".content' must be a string");
    has_user = has_user || m["role"] == "user";
  }
  if (!has_user) bad("'messages' has no message with role 'user'");
  if (j.contains("stream") && !(j["stream"].is_boolean() && !j["stream"].get<bool>()))
    bad("'stream' is not supported by the conductor gateway (use stream: false)");
  if (j.contains("model") && !j["model"].is_string()) bad("'model' must be a string, got " + type_name(j["model"]));
  if (j.contains("conductor")) {
    const json& c = j["conductor"];
    if (!c.is_object())
      bad("'conductor' must be an object {available, budget_usd, cost_weight}, got " + type_name(c));
    for (const auto& [k, v] : c.items())
      if (k != "available" && k != "budget_usd" && k != "cost_weight")
        bad("'conductor." + k + "' is not a known option (expected available, budget_usd, cost_weight)");
    // Same validation as /v1/route.
    json probe = c;
    probe["query"] = "";
    router_->parse_route_request(probe.dump());
  }
  boost::asio::post(impl_->pool, [this, j = std::move(j), respond = std::move(respond)]() {
    try {
      respond(complete(j));
    } catch (const HttpError& e) {
      respond(json_error(e.status(), e.what(), e.type()));
    } catch (const std::exception& e) {
      respond(json_error(500, std::string("gateway error: ") + e.what(), "server_error"));
    }
  });
}

CallResult Gateway::call_worker(const Provider& p, const json& request, int input_tokens, std::string* failure) const {
  const LiveWorld& world = router_->world();
  CallResult r;
  r.worker = p.worker;
  json body = request;
  body.erase("conductor");
  body["model"] = p.model;
  body["stream"] = false;
  const std::string payload = body.dump();
  std::vector<std::pair<std::string, std::string>> headers;
  if (!p.api_key.empty()) headers.emplace_back("Authorization", "Bearer " + p.api_key);

  const auto t0 = std::chrono::steady_clock::now();
  double backoff = config_.backoff_initial_s;
  for (int attempt = 0; attempt <= config_.retries; ++attempt) {
    if (metrics_) metrics_->count_worker_call(p.worker);
    bool retryable = true;
    CallFailure kind = CallFailure::kHttpError;
    try {
      ClientResponse resp = http_post_json(p.url, "/chat/completions", payload, headers, p.timeout_s);
      if (resp.status == 200) {
        try {
          const json out = json::parse(resp.body);
          const json& msg = out.at("choices").at(0).at("message");
          r.answer_text = msg.at("content").get<std::string>();
          int prompt_tokens = input_tokens, completion_tokens = 0;
          if (out.contains("usage") && out["usage"].is_object()) {
            const json& u = out["usage"];
            if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_integer())
              prompt_tokens = u["prompt_tokens"].get<int>();
            if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer())
              completion_tokens = u["completion_tokens"].get<int>();
          }
          if (completion_tokens == 0) completion_tokens = estimate_tokens(r.answer_text);
          if (out.contains("conductor_answer_id") && out["conductor_answer_id"].is_number_integer())
            r.answer_id = out["conductor_answer_id"].get<int32_t>();
          r.output_tokens = completion_tokens;
          r.cost_usd = (std::max(0, prompt_tokens) * world.price_in_per_mtok(p.worker) +
                        completion_tokens * world.price_out_per_mtok(p.worker)) / 1e6;
          // No list price (null in the manifest): the worker's mean training cost per call.
          if (!std::isfinite(r.cost_usd)) r.cost_usd = world.expected_call_cost_usd(p.worker);
          if (!std::isfinite(r.cost_usd)) r.cost_usd = 0.0;
          r.error = kOk;
          r.latency_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          failure->clear();
          return r;
        } catch (const json::exception& e) {
          *failure = "bad_response";
          kind = CallFailure::kBadResponse;
          r.error = kServerError;
        }
      } else {
        *failure = "http_" + std::to_string(resp.status);
        r.error = resp.status == 429 ? kRateLimited : resp.status == 504 || resp.status == 408 ? kTimeout : kServerError;
        // Other 4xx (bad key, bad request) will not get better by retrying.
        retryable = resp.status == 429 || resp.status == 408 || resp.status >= 500;
      }
    } catch (const CallError& e) {
      if (e.kind() == CallErrorKind::kTimeout) {
        *failure = "timeout";
        kind = CallFailure::kTimeout;
        r.error = kTimeout;
      } else {
        *failure = e.kind() == CallErrorKind::kConnect ? "connect" : "bad_response";
        kind = e.kind() == CallErrorKind::kConnect ? CallFailure::kConnect : CallFailure::kBadResponse;
        r.error = kServerError;
      }
    }
    if (metrics_) metrics_->count_worker_error(p.worker, kind);
    if (!retryable || attempt == config_.retries) break;
    std::this_thread::sleep_for(std::chrono::duration<double>(backoff));
    backoff *= config_.backoff_multiplier;
  }
  r.latency_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

HttpResponse Gateway::complete(const json& request) const {
  const LiveWorld& world = router_->world();
  const auto& actions = world.actions();
  const int n_workers = static_cast<int>(world.workers().size());

  // The query is the last user message.
  std::string text;
  for (const auto& m : request["messages"])
    if (m["role"] == "user") text = m["content"].get<std::string>();
  LiveQuery q;
  if (request.contains("conductor")) {
    json probe = request["conductor"];
    probe["query"] = text;
    q = router_->parse_route_request(probe.dump());
  } else {
    q.text = text;
    q.available.assign(n_workers, 1);
  }
  q.input_tokens = estimate_tokens(text);
  int callable = 0;
  for (int w = 0; w < n_workers; ++w) {
    if (provider_of_worker_[w] < 0) q.available[w] = 0;  // no endpoint configured
    callable += q.available[w];
  }
  if (callable == 0) throw HttpError(503, "no configured provider is available for this request", "service_unavailable");

  auto episode = world.start(q);
  std::vector<CallResult> results;
  std::vector<std::string> route;
  std::vector<uint8_t> tried(n_workers, 0);
  std::vector<float> last_probs;
  std::string finish_rule = world.default_finish_rule();
  std::map<std::string, int32_t> text_ids;

  auto run_call = [&](int w) {
    const Provider& p = providers_[provider_of_worker_[w]];
    std::string failure;
    CallResult r = call_worker(p, request, q.input_tokens, &failure);
    tried[w] = 1;
    if (r.error == kOk && r.answer_id < 0) {
      // Answer classes for agreement: same normalized text, same class (ids local to this request).
      const auto key = normalize_answer(r.answer_text);
      auto it = text_ids.find(key);
      r.answer_id = it != text_ids.end() ? it->second : (text_ids[key] = 1000000 + static_cast<int32_t>(text_ids.size()));
    }
    route.push_back(world.workers()[w] + (failure.empty() ? "" : "!" + failure));
    results.push_back(r);
    return r;
  };

  bool finished = false;
  while (episode->steps() < world.max_steps()) {
    Decision d;
    try {
      d = router_->decide(*episode);
    } catch (const HttpError&) {
      break;  // nothing left to do (every callable worker tried)
    }
    last_probs = d.probs;
    const ActionInfo& a = actions[d.action];
    if (a.kind == ActionInfo::Kind::kFinish) {
      finish_rule = a.finish_rule;
      finished = true;
      break;
    }
    episode->record_call(run_call(a.worker));
  }
  auto answered = [&] {
    for (const auto& r : results)
      if (r.error == kOk) return true;
    return false;
  };
  if (!finished && !answered()) {
    // Re-route past the policy's horizon: remaining workers by the policy's last probabilities.
    std::vector<int> order;
    for (int w = 0; w < n_workers; ++w)
      if (q.available[w] && !tried[w]) order.push_back(w);
    auto prob_of = [&](int w) {
      for (std::size_t a = 0; a < actions.size() && !last_probs.empty(); ++a)
        if (actions[a].kind == ActionInfo::Kind::kCall && actions[a].worker == w) return last_probs[a];
      return 0.f;
    };
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return prob_of(x) > prob_of(y); });
    for (int w : order) {
      if (run_call(w).error == kOk) break;
    }
  }

  std::string route_header;
  double cost = 0.0, latency = 0.0;
  long prompt_tokens = 0, completion_tokens = 0;
  json route_json = json::array();
  for (std::size_t i = 0; i < results.size(); ++i) {
    route_header += (i ? "," : "") + route[i];
    cost += results[i].cost_usd;
    latency += results[i].latency_s;
    if (results[i].error == kOk) {
      prompt_tokens += q.input_tokens;
      completion_tokens += results[i].output_tokens;
    }
    route_json.push_back({{"worker", world.workers()[results[i].worker]},
                          {"status", route[i].find('!') == std::string::npos ? "ok" : route[i].substr(route[i].find('!') + 1)},
                          {"latency_s", results[i].latency_s},
                          {"cost_usd", results[i].cost_usd}});
  }
  std::vector<std::pair<std::string, std::string>> headers = {
      {"x-conductor-route", route_header},
      {"x-conductor-cost-usd", fmt_g(cost)},
      {"x-conductor-model-version", router_->model_version()},
      {"x-conductor-steps", std::to_string(results.size())}};

  // The answer, by the finish rule (the environment's semantics).
  const int pick = world.final_call(finish_rule, results);

  if (pick < 0) {
    HttpResponse r = json_error(results.empty() ? 503 : 502,
                                results.empty() ? "no worker could be called for this request"
                                                : "every worker failed: " + route_header,
                                "upstream_error");
    r.headers = headers;
    return r;
  }
  const CallResult& chosen = results[pick];
  json out = {{"id", "chatcmpl-conductor-" + std::to_string(impl_->next_id.fetch_add(1))},
              {"object", "chat.completion"},
              {"created", static_cast<int64_t>(std::time(nullptr))},
              {"model", world.workers()[chosen.worker]},
              {"choices", json::array({{{"index", 0},
                                        {"message", {{"role", "assistant"}, {"content", chosen.answer_text}}},
                                        {"finish_reason", "stop"}}})},
              {"usage",
               {{"prompt_tokens", prompt_tokens},
                {"completion_tokens", completion_tokens},
                {"total_tokens", prompt_tokens + completion_tokens}}},
              {"conductor",
               {{"route", route_json},
                {"finish_rule", finish_rule},
                {"cost_usd", cost},
                {"latency_s", latency},
                {"model_version", router_->model_version()}}}};
  HttpResponse r;
  r.body = out.dump();
  r.headers = headers;
  return r;
}

}  // namespace conductor::serve
