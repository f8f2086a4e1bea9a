#include "serve/api_keys.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <set>
#include <sstream>

#include "artifacts/sha256.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "serve/sse.h"

namespace conductor::serve {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (unsigned char c : id)
    if (!std::isalnum(c) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

std::string fmt_usd(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string retry_after_value(double s) { return std::to_string(static_cast<long>(std::ceil(std::max(1.0, s)))); }

}  // namespace

std::vector<ApiKeyPolicy> load_keys_file(const std::string& path, const std::vector<std::string>& known_workers) {
  ConfigDoc doc = ConfigDoc::load_file(path);
  ConfigReader root = doc.root();
  std::vector<ApiKeyPolicy> out;
  std::set<std::string> ids, hashes;
  for (ConfigReader k : root.child_list("keys")) {
    ApiKeyPolicy p;
    p.id = k.required<std::string>("id");
    if (!valid_id(p.id)) k.fail_at("id", "a key id is 1-64 characters of letters, digits, '-', '_', '.'");
    if (!ids.insert(p.id).second) k.fail_at("id", "key id '" + p.id + "' is listed twice");
    p.sha256 = k.required<std::string>("sha256");
    for (auto& c : p.sha256) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (p.sha256.size() != 64 || p.sha256.find_first_not_of("0123456789abcdef") != std::string::npos)
      k.fail_at("sha256",
                "expected the 64 hex digits of the key's SHA-256 (printf %s \"$KEY\" | sha256sum), never the key itself");
    if (!hashes.insert(p.sha256).second) k.fail_at("sha256", "this hash is listed twice (two ids for one key)");
    p.budget_usd_per_day = k.get_in<double>("budget_usd_per_day", kInf, 0.0, kInf);
    p.budget_usd_per_month = k.get_in<double>("budget_usd_per_month", kInf, 0.0, kInf);
    p.requests_per_minute = k.get_in<int>("requests_per_minute", 0, 0, 1 << 30);
    p.workers = k.get<std::vector<std::string>>("workers", {});
    for (const auto& w : p.workers)
      if (std::find(known_workers.begin(), known_workers.end(), w) == known_workers.end()) {
        std::string known;
        for (const auto& n : known_workers) known += (known.empty() ? "" : ", ") + n;
        k.fail_at("workers", "unknown worker '" + w + "' (workers: " + known + ")");
      }
    k.finish();
    out.push_back(std::move(p));
  }
  root.finish();
  return out;
}

UsageWindows UsageWindows::at(int64_t unix_seconds) {
  UsageWindows w;
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M", &tm);
  w.minute = buf;
  w.day = w.minute.substr(0, 8);
  w.month = w.minute.substr(0, 6);
  w.seconds_to_next_minute = 60 - tm.tm_sec;
  w.seconds_to_next_day = 86400 - (tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec);
  std::tm next{};
  next.tm_year = tm.tm_mon == 11 ? tm.tm_year + 1 : tm.tm_year;
  next.tm_mon = (tm.tm_mon + 1) % 12;
  next.tm_mday = 1;
  w.seconds_to_next_month = static_cast<double>(timegm(&next) - t);
  return w;
}

LocalUsage::Counters& LocalUsage::roll(const std::string& key_id, const UsageWindows& w) {
  Counters& c = by_key_[key_id];
  if (c.minute != w.minute) {
    c.minute = w.minute;
    c.requests = 0;
  }
  if (c.day != w.day) {
    c.day = w.day;
    c.spend_day = 0;
  }
  if (c.month != w.month) {
    c.month = w.month;
    c.spend_month = 0;
  }
  return c;
}

int64_t LocalUsage::count_request(const std::string& key_id, const UsageWindows& w) {
  std::lock_guard<std::mutex> lk(mu_);
  return ++roll(key_id, w).requests;
}

std::pair<double, double> LocalUsage::spend(const std::string& key_id, const UsageWindows& w) {
  std::lock_guard<std::mutex> lk(mu_);
  const Counters& c = roll(key_id, w);
  return {c.spend_day, c.spend_month};
}

void LocalUsage::add_spend(const std::string& key_id, const UsageWindows& w, double usd) {
  std::lock_guard<std::mutex> lk(mu_);
  Counters& c = roll(key_id, w);
  c.spend_day += usd;
  c.spend_month += usd;
}

ApiKeys::ApiKeys(std::string path, std::vector<std::string> known_workers, std::shared_ptr<UsageStore> usage)
    : path_(std::move(path)), known_workers_(std::move(known_workers)), usage_(std::move(usage)) {
  if (!usage_) usage_ = std::make_shared<LocalUsage>();
  auto keys = load_keys_file(path_, known_workers_);
  auto map = std::make_shared<std::map<std::string, ApiKeyPolicy>>();
  for (auto& k : keys) {
    stats_of(k.id);
    std::string h = k.sha256;
    (*map)[h] = std::move(k);
  }
  by_hash_ = std::move(map);
}

ApiKeys::KeyStats& ApiKeys::stats_of(const std::string& id) {
  auto& s = stats_[id];
  if (!s) s = std::make_unique<KeyStats>();
  return *s;
}

bool ApiKeys::reload() {
  std::vector<ApiKeyPolicy> keys;
  try {
    keys = load_keys_file(path_, known_workers_);
  } catch (const Error& e) {
    reload_failures_.fetch_add(1);
    log_error("serve: keys file not reloaded (the current keys stay in force): ", e.what());
    return false;
  }
  auto map = std::make_shared<std::map<std::string, ApiKeyPolicy>>();
  std::lock_guard<std::mutex> lk(mu_);
  for (auto& k : keys) {
    stats_of(k.id);
    std::string h = k.sha256;
    (*map)[h] = std::move(k);
  }
  by_hash_ = std::move(map);
  reloads_.fetch_add(1);
  log_info("serve: keys file ", path_, " reloaded: ", by_hash_->size(), " keys");
  return true;
}

std::size_t ApiKeys::size() const {
  std::lock_guard<std::mutex> lk(mu_);
  return by_hash_->size();
}

Admission ApiKeys::admit(const HttpRequest& req, bool spends, ApiKind door) {
  Admission a;
  auto refuse = [&](int status, const std::string& message, const std::string& type, double retry_after_s) {
    a.refusal = client_error(door, status, message, type);
    if (retry_after_s >= 0) a.refusal.headers.emplace_back("retry-after", retry_after_value(retry_after_s));
    return a;
  };
  std::string key;
  const std::string auth = req.header("authorization");
  if (auth.size() > 7 && (auth.compare(0, 7, "Bearer ") == 0 || auth.compare(0, 7, "bearer ") == 0)) key = auth.substr(7);
  if (key.empty()) key = req.header("x-api-key");
  if (key.empty()) {
    unauthenticated_.fetch_add(1, std::memory_order_relaxed);
    return refuse(401,
                  "missing API key: send it as 'Authorization: Bearer KEY' (or 'x-api-key: KEY')",
                  "authentication_error", -1);
  }
  std::shared_ptr<const std::map<std::string, ApiKeyPolicy>> keys;
  KeyStats* stats = nullptr;
  {
    std::lock_guard<std::mutex> lk(mu_);
    keys = by_hash_;
  }
  const auto it = keys->find(sha256_hex(key));
  if (it == keys->end()) {
    unauthenticated_.fetch_add(1, std::memory_order_relaxed);
    return refuse(401, "invalid API key", "authentication_error", -1);
  }
  const ApiKeyPolicy& p = it->second;
  {
    std::lock_guard<std::mutex> lk(mu_);
    stats = &stats_of(p.id);
  }
  const UsageWindows w = UsageWindows::at(static_cast<int64_t>(std::time(nullptr)));
  try {
    if (p.requests_per_minute > 0 && usage_->count_request(p.id, w) > p.requests_per_minute) {
      stats->rate_limited.fetch_add(1, std::memory_order_relaxed);
      return refuse(429,
                    "rate limit of " + std::to_string(p.requests_per_minute) + " requests per minute reached for key '" +
                        p.id + "'",
                    "rate_limit_exceeded", w.seconds_to_next_minute);
    }
    if (spends && (std::isfinite(p.budget_usd_per_day) || std::isfinite(p.budget_usd_per_month))) {
      const auto [day, month] = usage_->spend(p.id, w);
      if (day >= p.budget_usd_per_day) {
        stats->over_budget.fetch_add(1, std::memory_order_relaxed);
        return refuse(429,
                      "the daily budget of $" + fmt_usd(p.budget_usd_per_day) + " for key '" + p.id + "' is spent ($" +
                          fmt_usd(day) + " today, UTC)",
                      "insufficient_quota", w.seconds_to_next_day);
      }
      if (month >= p.budget_usd_per_month) {
        stats->over_budget.fetch_add(1, std::memory_order_relaxed);
        return refuse(429,
                      "the monthly budget of $" + fmt_usd(p.budget_usd_per_month) + " for key '" + p.id +
                          "' is spent ($" + fmt_usd(month) + " this month, UTC)",
                      "insufficient_quota", w.seconds_to_next_month);
      }
    }
  } catch (const Error& e) {
    store_errors_.fetch_add(1, std::memory_order_relaxed);
    log_error("serve: usage store (", usage_->kind(), "): ", e.what());
    return refuse(503, "the usage store is unavailable: request not admitted", "service_unavailable", 1.0);
  }
  stats->admitted.fetch_add(1, std::memory_order_relaxed);
  a.ok = true;
  a.who.key_id = p.id;
  a.who.workers = p.workers;
  if (spends) {
    auto usage = usage_;
    const std::string id = p.id;
    a.who.charge = [usage, id, stats](double usd) {
      if (!(usd > 0) || !std::isfinite(usd)) return;
      stats->spend_nano_usd.fetch_add(static_cast<uint64_t>(std::llround(usd * 1e9)), std::memory_order_relaxed);
      try {
        usage->add_spend(id, UsageWindows::at(static_cast<int64_t>(std::time(nullptr))), usd);
      } catch (const Error& e) {
        log_error("serve: usage store (", usage->kind(), "): spend of key '", id, "' not recorded: ", e.what());
      }
    };
  }
  return a;
}

std::string ApiKeys::metrics_text() const {
  std::ostringstream o;
  std::vector<std::pair<std::string, const KeyStats*>> keys;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (const auto& [id, s] : stats_) keys.emplace_back(id, s.get());
  }
  o << "# HELP conductor_key_requests_total Requests per API key: admitted, or refused by its rate limit or budget.\n"
       "# TYPE conductor_key_requests_total counter\n";
  for (const auto& [id, s] : keys) {
    o << "conductor_key_requests_total{key=\"" << id << "\",result=\"admitted\"} " << s->admitted.load() << "\n";
    o << "conductor_key_requests_total{key=\"" << id << "\",result=\"rate_limited\"} " << s->rate_limited.load() << "\n";
    o << "conductor_key_requests_total{key=\"" << id << "\",result=\"over_budget\"} " << s->over_budget.load() << "\n";
  }
  o << "# HELP conductor_key_spend_usd_total Cost of the requests of each key answered by this process (USD).\n"
       "# TYPE conductor_key_spend_usd_total counter\n";
  for (const auto& [id, s] : keys)
    o << "conductor_key_spend_usd_total{key=\"" << id << "\"} " << fmt_usd(s->spend_nano_usd.load() / 1e9) << "\n";
  o << "# HELP conductor_key_spend_usd Spend of each key in the current UTC day and month, as the usage store "
       "counts it (shared by every replica with Redis).\n# TYPE conductor_key_spend_usd gauge\n";
  const UsageWindows w = UsageWindows::at(static_cast<int64_t>(std::time(nullptr)));
  for (const auto& [id, s] : keys) {
    try {
      const auto [day, month] = usage_->spend(id, w);
      o << "conductor_key_spend_usd{key=\"" << id << "\",period=\"day\"} " << fmt_usd(day) << "\n";
      o << "conductor_key_spend_usd{key=\"" << id << "\",period=\"month\"} " << fmt_usd(month) << "\n";
    } catch (const Error&) {  // the store is down: the counter above still shows this process's share
    }
  }
  auto one = [&](const char* name, const char* type, const char* help, uint64_t v) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n" << name << " " << v << "\n";
  };
  one("conductor_auth_failures_total", "counter", "Requests refused with 401 (no key or an unknown key).",
      unauthenticated_.load());
  one("conductor_usage_store_errors_total", "counter", "Requests refused with 503 because the usage store failed.",
      store_errors_.load());
  one("conductor_keys_reloads_total", "counter", "Keys file reloads (SIGHUP) that took effect.", reloads_.load());
  one("conductor_keys_reload_failures_total", "counter", "Keys file reloads refused (the old keys stayed).",
      reload_failures_.load());
  return o.str();
}

bool is_loopback_host(const std::string& host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  return host.rfind("127.", 0) == 0;
}

}  // namespace conductor::serve
