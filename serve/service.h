// `conductor serve`: the HTTP API around a Router (and, when configured, the chat gateway).
//
//   POST /v1/route             route one query (serve/router.h); 400/422 JSON errors on bad input
//   POST /v1/chat/completions  OpenAI-compatible gateway (serve/gateway.h); 404 JSON when not configured
//   GET  /healthz              {"status": "ok", "model_version": ..., "workers": [...]}; 503 while draining
//   GET  /metrics              Prometheus text (serve/metrics.h)
// Any other path is a 404 JSON error; a known path with the wrong method a 405.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "core/config.h"
#include "serve/gateway.h"
#include "serve/http_server.h"
#include "serve/metrics.h"
#include "serve/router.h"

namespace conductor::serve {

// serve.yaml (every key optional; command-line flags override the server keys):
//   server:
//     host: 127.0.0.1          # loopback unless told otherwise
//     port: 8080
//     threads: 2               # event-loop threads
//     body_limit_bytes: 1048576
//     read_timeout_s: 10       # a client must send a whole request within this
//     write_timeout_s: 10
//   gateway: {...}             # serve/gateway.h; absent = no /v1/chat/completions
struct ServeConfig {
  HttpServerOptions server;
  std::optional<GatewayConfig> gateway;
  static ServeConfig parse(ConfigReader r);
};

class ConductorService {
 public:
  // `gateway` may be null (then /v1/chat/completions answers 404 with a hint).
  ConductorService(std::shared_ptr<const Router> router, std::shared_ptr<Gateway> gateway, HttpServerOptions options);
  ~ConductorService();

  void start();
  int port() const { return server_->port(); }
  void drain(double deadline_s = 10.0) { server_->drain(deadline_s); }
  void wait() { server_->wait(); }
  ServerMetrics& metrics() { return *metrics_; }
  HttpServer& http() { return *server_; }

 private:
  void handle(HttpRequest& req, Responder respond);

  std::shared_ptr<const Router> router_;
  std::shared_ptr<Gateway> gateway_;
  std::shared_ptr<ServerMetrics> metrics_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace conductor::serve
