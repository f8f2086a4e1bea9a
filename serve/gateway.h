// POST /v1/chat/completions: an OpenAI-compatible gateway that runs the conductor against provider
// endpoints (OpenAI, Anthropic or Gemini wire formats, over HTTP or HTTPS).
//
// For each request the gateway starts a live episode (envs/live_world.h) from the last user
// message, asks the policy for an action (with the configured exploration, serve/router.h), calls
// the chosen worker's provider, records the result so the next observation shows it, and repeats
// until the policy finishes or max_steps is reached. A worker that still fails after its retries is
// marked failed and the conductor re-routes: while steps remain the policy itself chooses the next
// action (it sees the failure); once the policy's steps are spent without any answer, the gateway
// (with `fallback: true`) tries the remaining workers in the order of the policy's last action
// probabilities. The answer is picked with the finish rule the policy chose, else the
// environment's default.
//
// Asynchronous: requests are state machines on the gateway's own io_context (`threads` threads);
// an upstream call holds no thread while it waits (serve/http_client.h), so two threads carry
// hundreds of concurrent slow calls. Per provider:
//   - a keep-alive connection pool (TLS with verification when base_url is https);
//   - a concurrency limit (max_concurrency calls in flight; more wait in a FIFO queue, within their
//     call timeout);
//   - retries with exponential backoff for retryable errors (serve/providers.h), waiting at least
//     the provider's Retry-After (a Retry-After above max_retry_after_s is not waited for: the
//     conductor re-routes instead);
//   - a circuit breaker (serve/circuit_breaker.h): an open provider is masked out of the pool the
//     policy sees at the start of a request, which is how the conductor routes around an outage.
// All of it shows in /metrics.
//
// Streaming (`stream: true`): server-sent events in OpenAI's chat.completion.chunk format (the
// Anthropic door: Anthropic's message events), ending with `data: [DONE]`. A call that is certainly
// the workflow's last (the step budget is used, or the mask leaves no other call, and no earlier
// answer can be the one returned; every fallback call; a direct call) is streamed from the
// provider and its tokens are relayed as they arrive (headers go out with the first token,
// x-conductor-stream: relayed). Otherwise the answer is known only when the workflow ends: it is
// then sent as one stream (x-conductor-stream: buffered). Errors before the first byte are plain
// HTTP errors; after it, an error event. A client that disconnects cancels the call in flight (and
// any retry or further step); the decision is logged with status 499.
//
// Response: a chat.completion whose `model` is the worker that answered and whose `usage` sums
// every call, plus a `conductor` object (request_id, route with per-call status, latency and cost)
// and headers x-conductor-route ("gpt-4o!timeout,claude-3-haiku"), x-conductor-cost-usd,
// x-conductor-model-version, x-conductor-steps, x-conductor-request-id. When every call fails:
// 502 JSON error (503 when no configured worker could be called at all).
//
// Config (YAML, the `gateway` section of serve.yaml):
//   gateway:
//     threads: 2               # event-loop threads of the gateway
//     call_timeout_s: 30       # per call attempt (queueing for a concurrency slot included)
//     retries: 1               # extra attempts per worker on retryable failures
//     backoff_initial_s: 0.1   # wait before the first retry; doubles (backoff_multiplier) each retry
//     backoff_multiplier: 2.0
//     max_retry_after_s: 30    # longest Retry-After the gateway waits for
//     max_concurrency: 256     # calls in flight per provider (default for every provider)
//     max_idle_connections: 64 # kept-alive connections per provider
//     keepalive_idle_s: 30     # an idle connection older than this is not reused
//     fallback: true           # try remaining workers after the policy's steps run out unanswered
//     circuit_breaker: {failures: 5, cooldown_s: 30}   # failures: 0 = off
//     model_id: conductor      # the model id clients send to be routed (GET /v1/models lists it)
//     direct_workers: [gpt-4o] # workers a client may name as `model` to call directly (no routing)
//     providers:
//       - worker: gpt-4o                      # a worker of the export
//         base_url: https://api.openai.com/v1 # http:// or https://
//         api: openai                         # openai | anthropic | gemini
//         model: gpt-4o                       # upstream model name (default: worker)
//         api_key_env: OPENAI_API_KEY         # the key is read from this environment variable
//         ca_file: /etc/ssl/private-ca.pem    # trust this CA bundle instead of the system store
//         timeout_s: 20                       # overrides call_timeout_s
//         max_concurrency: 32                 # overrides the gateway's
//         max_tokens: 1024                    # anthropic: max_tokens when the request has none
//         anthropic_version: "2023-06-01"
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "serve/circuit_breaker.h"
#include "serve/decision_rows.h"
#include "serve/http_client.h"
#include "serve/http_server.h"
#include "serve/metrics.h"
#include "serve/providers.h"
#include "serve/router.h"

namespace conductor::serve {

struct ProviderConfig {
  std::string worker;
  std::string base_url;
  ApiKind api = ApiKind::kOpenAI;
  std::string model;        // default: worker
  std::string api_key_env;  // "" = no key
  std::string ca_file;      // "" = the system trust store
  double timeout_s = 0.0;   // 0 = the gateway's call_timeout_s
  int max_concurrency = 0;  // 0 = the gateway's max_concurrency
  int max_tokens = 1024;
  // Current price / the manifest's list price: the gateway charges calls at it and the policy sees
  // it (as a request's conductor.price_factors does; a request's own factor for the worker wins).
  double price_factor = 1.0;
  std::string anthropic_version = "2023-06-01";
  static ProviderConfig parse(ConfigReader r);
};

struct GatewayConfig {
  int threads = 2;
  double call_timeout_s = 30.0;
  int retries = 1;
  double backoff_initial_s = 0.1;
  double backoff_multiplier = 2.0;
  double max_retry_after_s = 30.0;
  int max_concurrency = 256;
  int max_idle_connections = 64;
  double keepalive_idle_s = 30.0;
  bool fallback = true;
  CircuitBreakerConfig circuit_breaker;
  std::vector<ProviderConfig> providers;
  std::string model_id = "conductor";
  std::vector<std::string> direct_workers;
  static GatewayConfig parse(ConfigReader r);
};

// Who sent a request (serve/api_keys.h): the key's id (decision logs, metrics), the workers it may
// use (empty: every worker) and where the request's total cost goes once known.
struct ClientIdentity {
  std::string key_id;
  std::vector<std::string> workers;
  std::function<void(double usd)> charge;
};

class Gateway {
 public:
  // Resolves providers against the router's workers and reads API keys from the environment.
  // Throws conductor::Error naming the provider entry: unknown worker (listing the known ones),
  // duplicate worker, bad URL, unreadable ca_file, api_key_env set but the variable is missing.
  Gateway(std::shared_ptr<const Router> router, GatewayConfig config);
  // Waits (up to 30 s) for requests still running, then stops the threads.
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  void set_metrics(std::shared_ptr<ServerMetrics> metrics);
  // Where decisions are logged and exploration comes from (without one: greedy, nothing logged).
  void set_recorder(std::shared_ptr<DecisionRecorder> recorder);

  // POST /v1/chat/completions. Validates the request on the calling thread (400 on bad input, 404
  // for an unknown model, 403 for a worker the key may not use) and runs the conductor on the
  // gateway's threads; responds from there.
  void handle(HttpRequest& req, Responder respond, ClientIdentity who = {});
  // POST /v1/messages (Anthropic Messages API): the same conductor loop, answered (and streamed)
  // in Anthropic's format; errors in Anthropic's error format.
  void handle_messages(HttpRequest& req, Responder respond, ClientIdentity who = {});
  // GET /v1/models: the conductor's model id, then the direct workers.
  json models() const;
  // GET /v1/models/{id}; throws HttpError 404 for an unknown id.
  json model_object(const std::string& id) const;
  const std::string& model_id() const;

  // Prometheus text of the providers: in-flight and queued calls, circuit state and openings,
  // connections opened and reused.
  std::string provider_metrics_text() const;
  CircuitBreaker::State circuit_state(const std::string& worker) const;
  // Requests being worked on.
  int in_flight() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace conductor::serve
