#include "serve/service.h"

#include "serve/gateway.h"
#include "serve/sse.h"
#include "traces/tokens.h"

namespace conductor::serve {

namespace {
std::vector<std::string> action_names(const Router& r) {
  std::vector<std::string> names;
  for (const auto& a : r.world().actions()) names.push_back(a.name);
  return names;
}
}  // namespace

ServeConfig ServeConfig::parse(ConfigReader r) {
  ServeConfig c;
  {
    ConfigReader s = r.child("server");
    c.server.host = s.get<std::string>("host", c.server.host);
    c.server.port = s.get_in<int>("port", c.server.port, 0, 65535);
    c.server.threads = s.get_in<int>("threads", c.server.threads, 1, 256);
    c.server.body_limit_bytes = static_cast<std::size_t>(
        s.get_in<int64_t>("body_limit_bytes", static_cast<int64_t>(c.server.body_limit_bytes), 1, int64_t(1) << 32));
    c.server.read_timeout_s = s.get_in<double>("read_timeout_s", c.server.read_timeout_s, 0.001, 3600.0);
    c.server.write_timeout_s = s.get_in<double>("write_timeout_s", c.server.write_timeout_s, 0.001, 3600.0);
    s.finish();
  }
  if (r.has("gateway")) c.gateway = GatewayConfig::parse(r.child("gateway"));
  if (r.has("auth")) c.auth = AuthConfig::parse(r.child("auth"));
  if (r.has("exploration")) c.exploration = ExplorationConfig::parse(r.child("exploration"));
  if (r.has("log")) c.log = DecisionLogConfig::parse(r.child("log"));
  r.finish();
  return c;
}

AuthConfig AuthConfig::parse(ConfigReader r) {
  AuthConfig c;
  c.keys_file = r.get<std::string>("keys_file", "");
  c.allow_unauthenticated = r.get<bool>("allow_unauthenticated", false);
  c.redis_url = r.get<std::string>("redis_url", "");
  if (!c.redis_url.empty() && c.keys_file.empty()) r.fail_at("redis_url", "shared counters need auth.keys_file");
  r.finish();
  return c;
}

ConductorService::ConductorService(std::shared_ptr<const Router> router, std::shared_ptr<Gateway> gateway,
                                   HttpServerOptions options, ExplorationConfig exploration, DecisionLogConfig log,
                                   std::shared_ptr<ApiKeys> keys, bool allow_unauthenticated)
    : router_(std::move(router)), gateway_(std::move(gateway)), keys_(std::move(keys)) {
  if (!keys_ && !allow_unauthenticated && !is_loopback_host(options.host))
    fail("serve: refusing to listen on ", options.host,
         " without client API keys: anyone reaching that address could spend the providers' keys. Give a keys "
         "file (--keys FILE or auth.keys_file), or allow it explicitly (--allow-unauthenticated or "
         "auth.allow_unauthenticated: true)");
  metrics_ = std::make_shared<ServerMetrics>(
      std::vector<std::string>{"/v1/route", "/v1/chat/completions", "/v1/messages", "/v1/models", "/v1/feedback",
                               "/healthz", "/metrics"},
      action_names(*router_), router_->world().workers());
  std::shared_ptr<RequestIndex> index;
  if (!log.dir.empty()) {
    log_ = std::make_shared<DecisionLog>(log);
    index = std::make_shared<RequestIndex>(log.remember_requests);
    auto l = log_;
    metrics_->add_extra_source([l] {
      const DecisionLogStats s = l->stats();
      std::string o;
      auto add = [&](const char* name, const char* type, const char* help, uint64_t v) {
        o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
             std::to_string(v) + "\n";
      };
      add("conductor_decision_log_rows_total", "counter", "Decision and feedback rows written to the log.", s.rows_written);
      add("conductor_decision_log_dropped_rows_total", "counter",
          "Rows dropped (log queue full or write error); requests were answered anyway.", s.rows_dropped);
      add("conductor_decision_log_fsyncs_total", "counter", "fdatasync calls of the decision log.", s.fsyncs);
      add("conductor_decision_log_bytes_total", "counter", "Bytes written to the decision log.", s.bytes_written);
      add("conductor_decision_log_files_total", "counter", "Log files opened by this process (rotation).", s.files);
      add("conductor_decision_log_queued_rows", "gauge", "Rows waiting for the log writer.", static_cast<uint64_t>(s.queued));
      return o;
    });
  }
  recorder_ = std::make_shared<DecisionRecorder>(router_, exploration, log_, index);
  if (keys_) {
    auto k = keys_;
    metrics_->add_extra_source([k] { return k->metrics_text(); });
  }
  if (gateway_) {
    gateway_->set_metrics(metrics_);
    gateway_->set_recorder(recorder_);
    std::weak_ptr<Gateway> g = gateway_;  // the gateway holds the metrics: no cycle
    metrics_->add_extra_source([g] {
      auto gw = g.lock();
      return gw ? gw->provider_metrics_text() : std::string();
    });
  }
  auto metrics = metrics_;
  server_ = std::make_unique<HttpServer>(
      std::move(options), [this](HttpRequest& req, Responder respond) { handle(req, std::move(respond)); },
      [metrics](const std::string& path, int status, double seconds) {
        metrics->observe_response(path, status, seconds);
      });
  HttpServer* srv = server_.get();
  metrics_->set_in_flight_source([srv] { return srv->in_flight(); });
}

ConductorService::~ConductorService() {
  // Drain the server before the gateway and router it calls into go away.
  server_.reset();
}

void ConductorService::start() { server_->start(); }

void ConductorService::handle(HttpRequest& req, Responder respond) {
  auto require = [&](const char* method) {
    if (req.method != method)
      throw HttpError(405, "method " + req.method + " not allowed on " + req.path + " (use " + method + ")");
  };
  // Client API keys guard every /v1/ endpoint (serve/api_keys.h).
  ClientIdentity who;
  if (keys_ && req.path.rfind("/v1/", 0) == 0) {
    const bool spends = req.path == "/v1/chat/completions" || req.path == "/v1/messages";
    Admission a = keys_->admit(req, spends, req.path == "/v1/messages" ? ApiKind::kAnthropic : ApiKind::kOpenAI);
    if (!a.ok) return respond(std::move(a.refusal));
    who = std::move(a.who);
  }
  if (req.path == "/v1/route") {
    require("POST");
    LiveQuery q = router_->parse_route_request(req.body);
    uint64_t seq = 0;
    const std::string request_id = recorder_->new_request_id(&seq);
    Rng rng = recorder_->request_rng(seq);
    Decision d;
    json answer = router_->route(q, recorder_->exploration(), rng, &d);
    answer["request_id"] = request_id;
    metrics_->count_decision(d.action);
    if (recorder_->logging()) {
      LoggedDecision ld;
      ld.request_id = request_id;
      ld.endpoint = "route";
      ld.key_id = who.key_id;
      ld.timestamp_ms = unix_time_ms();
      std::string given;
      const json body = json::parse(req.body);  // already validated
      if (body.contains(Router::kQueryIdField)) given = body[Router::kQueryIdField].get<std::string>();
      ld.query_id = recorder_->query_id(given, q.text);
      if (q.input_tokens < 0) q.input_tokens = estimate_tokens(q.text);
      ld.query = q;
      LoggedStep step;
      step.action = d.action;
      step.propensity = d.propensity;
      ld.steps.push_back(step);
      recorder_->record(ld);
    }
    HttpResponse r;
    r.body = answer.dump();
    r.headers.emplace_back("x-conductor-request-id", request_id);
    return respond(std::move(r));
  }
  if (req.path == "/v1/feedback") {
    require("POST");
    return respond(feedback(req));
  }
  if (req.path == "/v1/chat/completions") {
    require("POST");
    if (!gateway_)
      throw HttpError(404, "the chat gateway is not configured: start `conductor serve` with --config serve.yaml "
                           "listing the provider endpoints");
    return gateway_->handle(req, std::move(respond), std::move(who));
  }
  if (req.path == "/v1/messages") {
    require("POST");
    if (!gateway_)
      return respond(client_error(ApiKind::kAnthropic, 404,
                                  "the chat gateway is not configured: start `conductor serve` with --config "
                                  "serve.yaml listing the provider endpoints",
                                  "not_found"));
    return gateway_->handle_messages(req, std::move(respond), std::move(who));
  }
  if (req.path == "/v1/models" || req.path.rfind("/v1/models/", 0) == 0) {
    require("GET");
    if (!gateway_)
      throw HttpError(404, "no models: the chat gateway is not configured (start `conductor serve` with --config "
                           "serve.yaml listing the provider endpoints)", "not_found");
    HttpResponse r;
    r.body = (req.path == "/v1/models" ? gateway_->models() : gateway_->model_object(req.path.substr(11))).dump();
    return respond(std::move(r));
  }
  if (req.path == "/healthz") {
    require("GET");
    HttpResponse r;
    const bool draining = server_->draining();
    r.status = draining ? 503 : 200;
    r.body = json{{"status", draining ? "draining" : "ok"},
                  {"model_version", router_->model_version()},
                  {"policy", router_->policy().kind()},
                  {"workers", router_->world().workers()},
                  {"gateway", gateway_ != nullptr},
                  {"api_keys", keys_ ? json(keys_->size()) : json(nullptr)},
                  {"exploration", recorder_->exploration().id()},
                  {"decision_log", log_ ? json(log_->config().dir) : json(nullptr)}}
                 .dump();
    return respond(std::move(r));
  }
  if (req.path == "/metrics") {
    require("GET");
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics_->prometheus_text();
    return respond(std::move(r));
  }
  throw HttpError(404, "no such endpoint: " + req.method + " " + req.path +
                           " (endpoints: POST /v1/route, POST /v1/chat/completions, POST /v1/messages, GET /v1/models, "
                           "POST /v1/feedback, GET /healthz, GET /metrics)",
                  "not_found");
}

HttpResponse ConductorService::feedback(const HttpRequest& req) {
  auto refuse = [&](int status, FeedbackResult why, const std::string& msg, const char* type) {
    metrics_->count_feedback(why);
    return json_error(status, msg, type);
  };
  json j;
  try {
    j = parse_json_body(req.body);
  } catch (const JsonBodyError& e) {
    return refuse(400, FeedbackResult::kInvalid, e.what(), "invalid_request_error");
  }
  if (!j.is_object())
    return refuse(400, FeedbackResult::kInvalid, "feedback must be a JSON object {request_id, quality, source?}",
                  "invalid_request_error");
  for (const auto& [k, v] : j.items())
    if (k != "request_id" && k != "quality" && k != "source")
      return refuse(400, FeedbackResult::kInvalid,
                    "unknown field '" + k + "' (expected request_id, quality, source)", "invalid_request_error");
  if (!j.contains("request_id") || !j["request_id"].is_string() || j["request_id"].get_ref<const std::string&>().empty())
    return refuse(400, FeedbackResult::kInvalid,
                  "'request_id' must be the non-empty request id of a logged decision (x-conductor-request-id), got " +
                      (j.contains("request_id") ? j["request_id"].dump().substr(0, 60) : std::string("nothing")),
                  "invalid_request_error");
  if (!j.contains("quality") || !j["quality"].is_number() || j["quality"].is_boolean())
    return refuse(400, FeedbackResult::kInvalid,
                  "'quality' must be a number in [0, 1], got " +
                      (j.contains("quality") ? j["quality"].dump().substr(0, 60) : std::string("nothing")),
                  "invalid_request_error");
  const double quality = j["quality"].get<double>();
  if (!(quality >= 0.0 && quality <= 1.0))
    return refuse(400, FeedbackResult::kInvalid, "'quality' must lie in [0, 1], got " + j["quality"].dump(),
                  "invalid_request_error");
  std::string source;
  if (j.contains("source")) {
    if (!j["source"].is_string() || j["source"].get_ref<const std::string&>().size() > 64)
      return refuse(400, FeedbackResult::kInvalid, "'source' must be a string of at most 64 bytes (e.g. \"user\", \"judge\")",
                    "invalid_request_error");
    source = j["source"].get<std::string>();
  }
  const std::string id = j["request_id"].get<std::string>();
  if (!recorder_->logging())
    return refuse(404, FeedbackResult::kLoggingOff,
                  "decision logging is off (start `conductor serve` with --log-dir): there is no decision to label",
                  "not_found");
  if (!recorder_->index() || !recorder_->index()->contains(id))
    return refuse(404, FeedbackResult::kUnknownRequest,
                  "unknown request_id '" + id.substr(0, 80) + "': this server logged no decision with that id "
                  "(or it is older than the last log.remember_requests decisions)",
                  "not_found");
  if (!recorder_->record_feedback(id, quality, source))
    return refuse(503, FeedbackResult::kDropped, "the decision log queue is full: feedback not recorded, retry later",
                  "service_unavailable");
  metrics_->count_feedback(FeedbackResult::kRecorded);
  HttpResponse r;
  r.body = json{{"status", "recorded"}, {"request_id", id}, {"quality", quality}}.dump();
  return r;
}

}  // namespace conductor::serve
