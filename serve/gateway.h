// POST /v1/chat/completions: an OpenAI-compatible gateway that runs the conductor against provider
// endpoints.
//
// For each request the gateway starts a live episode (envs/live_world.h) from the last user
// message, asks the policy for an action, calls the chosen worker's endpoint (per-call timeout,
// retries with exponential backoff on 429 / 5xx / timeouts / connection errors), records the result
// so the next observation shows it, and repeats until the policy finishes or max_steps is reached.
// A worker that still fails after its retries is marked failed and the conductor re-routes: while
// steps remain the policy itself chooses the next action (it sees the failure); once the policy's
// steps are spent without any answer, the gateway falls back to the remaining configured workers in
// the order of the policy's last action probabilities. The answer is picked with the finish rule the
// policy chose (the environment's rules: last | vote | most_trusted), else the environment's default.
//
// Response: a chat.completion whose `model` is the worker that answered and whose `usage` sums every
// call, plus headers
//   x-conductor-route:     "gpt-4o!timeout,claude-3-haiku"  (calls in order; failures marked !kind)
//   x-conductor-cost-usd:  total cost of the calls (prices x tokens)
//   x-conductor-model-version, x-conductor-steps
// When every call fails: 502 JSON error (503 when no configured worker could be called at all).
//
// Config (YAML, parsed by core/config.h; the `gateway` section of serve.yaml):
//   gateway:
//     threads: 16              # concurrent gateway requests (each blocks one thread while calling)
//     call_timeout_s: 30       # per call attempt
//     retries: 1               # extra attempts per worker on retryable failures
//     backoff_initial_s: 0.1   # wait before the first retry; doubles (backoff_multiplier) each retry
//     backoff_multiplier: 2.0
//     providers:
//       - worker: gpt-4o                      # a worker of the export
//         base_url: http://127.0.0.1:9000/v1  # POSTs to base_url + /chat/completions
//         model: gpt-4o                       # upstream model name (default: worker)
//         api_key_env: OPENAI_API_KEY         # sent as "Authorization: Bearer $VALUE" (optional)
//         timeout_s: 20                       # overrides call_timeout_s (optional)
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "serve/http_client.h"
#include "serve/http_server.h"
#include "serve/metrics.h"
#include "serve/router.h"

namespace conductor::serve {

struct ProviderConfig {
  std::string worker;
  std::string base_url;
  std::string model;        // default: worker
  std::string api_key_env;  // "" = no Authorization header
  double timeout_s = 0.0;   // 0 = the gateway's call_timeout_s
  static ProviderConfig parse(ConfigReader r);
};

struct GatewayConfig {
  int threads = 16;
  double call_timeout_s = 30.0;
  int retries = 1;
  double backoff_initial_s = 0.1;
  double backoff_multiplier = 2.0;
  std::vector<ProviderConfig> providers;
  static GatewayConfig parse(ConfigReader r);
};

class Gateway {
 public:
  // Resolves providers against the router's workers and API keys from the environment. Throws
  // conductor::Error naming the provider entry: unknown worker (listing the known ones), duplicate
  // worker, bad URL, api_key_env set but the variable is missing.
  Gateway(std::shared_ptr<const Router> router, GatewayConfig config);
  ~Gateway();

  void set_metrics(std::shared_ptr<ServerMetrics> metrics) { metrics_ = std::move(metrics); }
  // Validates the request on the calling thread (400 on bad input) and runs the conductor on the
  // gateway's own threads; responds from there.
  void handle(HttpRequest& req, Responder respond);

  // Runs one request synchronously (the work handle() schedules). Throws HttpError.
  HttpResponse complete(const json& request) const;

 private:
  struct Provider {
    int worker = -1;
    Url url;
    std::string model;
    std::string api_key;
    double timeout_s = 0.0;
  };
  struct Impl;
  CallResult call_worker(const Provider& p, const json& request, int input_tokens, std::string* failure) const;

  std::shared_ptr<const Router> router_;
  GatewayConfig config_;
  std::vector<int> provider_of_worker_;  // worker index -> provider index or -1
  std::vector<Provider> providers_;
  std::shared_ptr<ServerMetrics> metrics_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace conductor::serve
