#include "serve/service.h"

#include "serve/gateway.h"

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
  r.finish();
  return c;
}

ConductorService::ConductorService(std::shared_ptr<const Router> router, std::shared_ptr<Gateway> gateway,
                                   HttpServerOptions options)
    : router_(std::move(router)), gateway_(std::move(gateway)) {
  metrics_ = std::make_shared<ServerMetrics>(
      std::vector<std::string>{"/v1/route", "/v1/chat/completions", "/healthz", "/metrics"}, action_names(*router_),
      router_->world().workers());
  if (gateway_) gateway_->set_metrics(metrics_);
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
  if (req.path == "/v1/route") {
    require("POST");
    const LiveQuery q = router_->parse_route_request(req.body);
    Decision d;
    HttpResponse r;
    r.body = router_->route(q, &d).dump();
    metrics_->count_decision(d.action);
    return respond(std::move(r));
  }
  if (req.path == "/v1/chat/completions") {
    require("POST");
    if (!gateway_)
      throw HttpError(404, "the chat gateway is not configured: start `conductor serve` with --config serve.yaml "
                           "listing the provider endpoints");
    return gateway_->handle(req, std::move(respond));
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
                  {"gateway", gateway_ != nullptr}}
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
                           " (endpoints: POST /v1/route, POST /v1/chat/completions, GET /healthz, GET /metrics)",
                  "not_found");
}

}  // namespace conductor::serve
