// `conductor serve`: the HTTP API around a Router (and, when configured, the chat gateway).
//
//   POST /v1/route             route one query (serve/router.h); 400/422 JSON errors on bad input
//   POST /v1/chat/completions  OpenAI-compatible gateway (serve/gateway.h); 404 JSON when not configured
//   GET  /healthz              {"status": "ok", "model_version": ..., "workers": [...]}; 503 while draining
//   GET  /metrics              Prometheus text (serve/metrics.h)
// Any other path is a 404 JSON error; a known path with the wrong method a 405.
#pragma once

#include <memory>
#include <string>

#include "serve/http_server.h"
#include "serve/metrics.h"
#include "serve/router.h"

namespace conductor::serve {

class Gateway;

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
