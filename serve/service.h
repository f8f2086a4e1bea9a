// `conductor serve`: the HTTP API around a Router (and, when configured, the chat gateway).
//
//   POST /v1/route             route one query (serve/router.h); 400/422 JSON errors on bad input
//   POST /v1/chat/completions  OpenAI-compatible gateway (serve/gateway.h); 404 JSON when not configured
//   POST /v1/feedback          {"request_id", "quality": 0..1, "source"?}: a quality label for a
//                              logged decision (its own log row, joined at import). 400 for wrong
//                              types, unknown fields or a quality outside [0, 1]; 404 for a request id
//                              this server did not log (or logging off); 503 when the log queue is full.
//                              Nothing is logged unless the answer is 200.
//   GET  /healthz              {"status": "ok", "model_version": ..., "workers": [...]}; 503 while draining
//   GET  /metrics              Prometheus text (serve/metrics.h)
// With a decision log (serve/decision_log.h) every /v1/route answer and every gateway request is
// logged with its request id (also returned: `request_id` in the body, x-conductor-request-id).
// Any other path is a 404 JSON error; a known path with the wrong method a 405.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "core/config.h"
#include "serve/api_keys.h"
#include "serve/decision_log.h"
#include "serve/decision_rows.h"
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
//   exploration: {epsilon: 0.1} | {sample: true}   # serve/router.h; absent = greedy
//   auth:                      # serve/api_keys.h
//     keys_file: keys.yaml     # client API keys (sha256 of each); absent = no keys: loopback only
//     allow_unauthenticated: false   # true: bind a non-loopback address without keys (explicitly)
//     redis_url: redis://127.0.0.1:6379/0   # shared rate and spend counters (absent: per process)
//   log: {dir: logs/, rotate_bytes: 67108864, batch_rows: 4096, queue_rows: 65536,
//         fsync_interval_s: 0, log_query_text: true, remember_requests: 100000}  # serve/decision_log.h
struct AuthConfig {
  std::string keys_file;
  bool allow_unauthenticated = false;
  std::string redis_url;
  static AuthConfig parse(ConfigReader r);
};

struct ServeConfig {
  HttpServerOptions server;
  AuthConfig auth;
  std::optional<GatewayConfig> gateway;
  ExplorationConfig exploration;
  DecisionLogConfig log;  // log.dir "" = no decision log (`--log-dir` sets it)
  static ServeConfig parse(ConfigReader r);
};

class ConductorService {
 public:
  // `gateway` may be null (then /v1/chat/completions answers 404 with a hint). With log.dir set
  // the decision log is opened here (throws conductor::Error naming the directory). `keys` null:
  // no client authentication, and then a host that is not loopback is refused (throws) unless
  // `allow_unauthenticated`.
  ConductorService(std::shared_ptr<const Router> router, std::shared_ptr<Gateway> gateway, HttpServerOptions options,
                   ExplorationConfig exploration = {}, DecisionLogConfig log = {},
                   std::shared_ptr<ApiKeys> keys = nullptr, bool allow_unauthenticated = false);
  ~ConductorService();

  void start();
  int port() const { return server_->port(); }
  void drain(double deadline_s = 10.0) { server_->drain(deadline_s); }
  void wait() { server_->wait(); }
  ServerMetrics& metrics() { return *metrics_; }
  HttpServer& http() { return *server_; }
  // Null when logging is off.
  const DecisionLog* decision_log() const { return log_.get(); }

 private:
  void handle(HttpRequest& req, Responder respond);
  HttpResponse feedback(const HttpRequest& req);

  std::shared_ptr<const Router> router_;
  std::shared_ptr<Gateway> gateway_;
  std::shared_ptr<ApiKeys> keys_;
  std::shared_ptr<ServerMetrics> metrics_;
  std::shared_ptr<DecisionLog> log_;
  std::shared_ptr<DecisionRecorder> recorder_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace conductor::serve
