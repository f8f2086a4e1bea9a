// Client API keys of `conductor serve`: who may call the /v1/ endpoints, how much each key may
// spend, how often it may call, and which workers it may use.
//
// The keys file (YAML; `auth.keys_file` in serve.yaml or `--keys FILE`) holds the SHA-256 of each
// key, never the key itself:
//
//   keys:
//     - id: team-a                  # shown in /metrics and decision logs (never the key)
//       sha256: 9f86d081884c7d65...  # hex SHA-256 of the key: printf %s "$KEY" | sha256sum
//       budget_usd_per_day: 5       # optional; the UTC day
//       budget_usd_per_month: 100   # optional; the UTC calendar month
//       requests_per_minute: 60     # optional; fixed one-minute windows (UTC)
//       workers: [gpt-5-mini]       # optional; the workers the key may use (default: all)
//
// A request presents its key as `Authorization: Bearer KEY` or `x-api-key: KEY` (the Anthropic
// SDK's header; both are read on every endpoint). admit() answers, in the OpenAI error shape (or
// the Anthropic one for the Anthropic door):
//   401  no key, or a key whose hash is not in the file
//   429  the key's requests_per_minute is used up in this minute (Retry-After: seconds to the next
//        minute), or its daily / monthly budget is spent (type insufficient_quota, Retry-After:
//        seconds to the next UTC day / month). Budgets apply to the endpoints that spend (chat,
//        messages); the request that crosses a budget is answered, the next one refused (spend is
//        known only after the calls, so concurrent requests can overshoot by what they cost).
//   403  (raised by the gateway) a model or `conductor.available` worker the key may not use
//
// reload() re-reads the file (SIGHUP in `conductor serve`); a file that does not parse leaves the
// current keys in force (and is logged). Counters (requests per minute window, spend per day and
// month) live in a UsageStore: in this process (LocalUsage; several replicas then each enforce the
// limits on their own share of the traffic), or shared by every replica through Redis
// (serve/redis_usage.h, atomic INCR / INCRBYFLOAT with expiry).
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "serve/gateway.h"
#include "serve/http_server.h"
#include "serve/providers.h"

namespace conductor::serve {

struct ApiKeyPolicy {
  std::string id;
  std::string sha256;  // lower-case hex
  double budget_usd_per_day = std::numeric_limits<double>::infinity();
  double budget_usd_per_month = std::numeric_limits<double>::infinity();
  int requests_per_minute = 0;  // 0 = unlimited
  std::vector<std::string> workers;  // empty = every worker
};

// Parses a keys file. Throws conductor::Error with file:line for a missing or malformed field, a
// repeated id or hash, a worker not in `known_workers`.
std::vector<ApiKeyPolicy> load_keys_file(const std::string& path, const std::vector<std::string>& known_workers);

// The UTC windows a counter belongs to.
struct UsageWindows {
  std::string minute;  // "202612070931"
  std::string day;     // "20261207"
  std::string month;   // "202612"
  double seconds_to_next_minute = 60, seconds_to_next_day = 86400, seconds_to_next_month = 86400;
  static UsageWindows at(int64_t unix_seconds);
};

// Per-key counters. Implementations are thread-safe; a store that cannot answer throws
// conductor::Error (the request then gets 503).
class UsageStore {
 public:
  virtual ~UsageStore() = default;
  // Counts one request in the key's minute window; returns the window's count including it.
  virtual int64_t count_request(const std::string& key_id, const UsageWindows& w) = 0;
  // The key's spend (USD) in the day and the month of `w`.
  virtual std::pair<double, double> spend(const std::string& key_id, const UsageWindows& w) = 0;
  virtual void add_spend(const std::string& key_id, const UsageWindows& w, double usd) = 0;
  virtual std::string kind() const = 0;  // "local" | "redis"
};

// Counters in this process (windows older than the current ones are dropped as they pass).
class LocalUsage : public UsageStore {
 public:
  int64_t count_request(const std::string& key_id, const UsageWindows& w) override;
  std::pair<double, double> spend(const std::string& key_id, const UsageWindows& w) override;
  void add_spend(const std::string& key_id, const UsageWindows& w, double usd) override;
  std::string kind() const override { return "local"; }

 private:
  struct Counters {
    std::string minute, day, month;
    int64_t requests = 0;
    double spend_day = 0, spend_month = 0;
  };
  Counters& roll(const std::string& key_id, const UsageWindows& w);  // mu_ held
  std::mutex mu_;
  std::map<std::string, Counters> by_key_;
};

struct Admission {
  bool ok = false;
  ClientIdentity who;    // ok: the key's id and workers (charge is set for spending endpoints)
  HttpResponse refusal;  // !ok: the 401 / 429 / 503 to send
};

class ApiKeys {
 public:
  // Loads `path` (throws conductor::Error when it does not parse: the server does not start).
  ApiKeys(std::string path, std::vector<std::string> known_workers, std::shared_ptr<UsageStore> usage);

  // Re-reads the file; false (and the error logged) when it does not parse: the old keys stay.
  bool reload();
  // Who sent `req`, and whether it may go on. `spends`: the endpoint calls workers (budgets apply,
  // and the identity's charge adds the request's cost to the key's spend). `door` shapes the error.
  Admission admit(const HttpRequest& req, bool spends, ApiKind door = ApiKind::kOpenAI);

  std::size_t size() const;
  const std::string& path() const { return path_; }
  const UsageStore& usage() const { return *usage_; }
  // Prometheus text: requests per key and result, spend per key (this process's charges, and the
  // store's current day and month).
  std::string metrics_text() const;

 private:
  struct KeyStats {
    std::atomic<uint64_t> admitted{0}, rate_limited{0}, over_budget{0};
    std::atomic<uint64_t> spend_nano_usd{0};
  };
  KeyStats& stats_of(const std::string& id);

  std::string path_;
  std::vector<std::string> known_workers_;
  std::shared_ptr<UsageStore> usage_;
  mutable std::mutex mu_;
  std::shared_ptr<const std::map<std::string, ApiKeyPolicy>> by_hash_;  // swapped on reload
  std::map<std::string, std::unique_ptr<KeyStats>> stats_;              // by key id; kept across reloads
  std::atomic<uint64_t> unauthenticated_{0}, store_errors_{0}, reloads_{0}, reload_failures_{0};
};

// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_host(const std::string& host);

}  // namespace conductor::serve
