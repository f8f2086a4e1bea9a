// Client API keys: the keys file, 401 / 403 / 429 with Retry-After, budgets, reload, spend per key
// in /metrics and in the decision logs, and the loopback-only rule without keys.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "artifacts/sha256.h"
#include "serve/api_keys.h"
#include "serve/redis_usage.h"
#include "tests/serve/gateway_rig.h"
#include "traces/import_jsonl.h"

namespace conductor::serve {
namespace {

namespace fs = std::filesystem;
using testing::chat_body;
using testing::clean_query;
using testing::make_rig;
using testing::RigOptions;

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

std::string key_entry(const std::string& id, const std::string& key, const std::string& extra = "") {
  return "  - {id: " + id + ", sha256: " + sha256_hex(key) + (extra.empty() ? "" : ", " + extra) + "}\n";
}

ClientResponse call(int port, const std::string& path, const std::string& body, const Headers& headers) {
  return http_post_json(testing::loopback(port), path, body, headers, 20.0);
}

Headers bearer(const std::string& key) { return {{"Authorization", "Bearer " + key}}; }

TEST(KeysFile, RejectsWhatCannotBeAKey) {
  const std::string dir = conductor::testing::temp_dir() + "/keys-file";
  fs::create_directories(dir);
  const std::string path = dir + "/keys.yaml";
  const std::vector<std::string> workers = {"w1", "w2"};
  const std::string h = sha256_hex("k");
  auto error_of = [&](const std::string& yaml) -> std::string {
    write_file(path, yaml);
    try {
      load_keys_file(path, workers);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error_of("keys:\n  - {id: a, sha256: sk-plaintext-key}\n").find("never the key itself"), std::string::npos);
  EXPECT_NE(error_of("keys:\n  - {id: a, sha256: " + h + "}\n  - {id: a, sha256: " + sha256_hex("j") + "}\n")
                .find("listed twice"),
            std::string::npos);
  EXPECT_NE(error_of("keys:\n  - {id: a, sha256: " + h + "}\n  - {id: b, sha256: " + h + "}\n").find("listed twice"),
            std::string::npos);
  EXPECT_NE(error_of("keys:\n  - {id: a, sha256: " + h + ", workers: [w9]}\n").find("unknown worker 'w9'"),
            std::string::npos);
  EXPECT_NE(error_of("keys:\n  - {id: a, sha256: " + h + ", budget_usd_per_day: -1}\n").find("budget_usd_per_day"),
            std::string::npos);
  EXPECT_NE(error_of("keys:\n  - {id: 'a b', sha256: " + h + "}\n").find("key id"), std::string::npos);
  EXPECT_NE(error_of("keys:\n  - {id: a, sha256: " + h + ", rpm: 3}\n").find("rpm"), std::string::npos);
  EXPECT_EQ(error_of("keys:\n  - {id: a, sha256: " + h + ", workers: [w2], requests_per_minute: 5}\n"), "");
  const auto keys = load_keys_file(path, workers);
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].requests_per_minute, 5);
  EXPECT_EQ(keys[0].workers, std::vector<std::string>{"w2"});
}

TEST(UsageWindowsAt, NamesTheUtcWindowsAndTheirEnds) {
  // 2026-12-31 23:59:30 UTC.
  const UsageWindows w = UsageWindows::at(1798761570);
  EXPECT_EQ(w.minute, "202612312359");
  EXPECT_EQ(w.day, "20261231");
  EXPECT_EQ(w.month, "202612");
  EXPECT_DOUBLE_EQ(w.seconds_to_next_minute, 30);
  EXPECT_DOUBLE_EQ(w.seconds_to_next_day, 30);
  EXPECT_DOUBLE_EQ(w.seconds_to_next_month, 30);
  LocalUsage u;
  EXPECT_EQ(u.count_request("a", w), 1);
  EXPECT_EQ(u.count_request("a", w), 2);
  u.add_spend("a", w, 0.5);
  EXPECT_EQ(u.spend("a", w), std::make_pair(0.5, 0.5));
  const UsageWindows next = UsageWindows::at(1798761570 + 60);  // a new minute, day and month
  EXPECT_EQ(u.count_request("a", next), 1);
  EXPECT_EQ(u.spend("a", next), std::make_pair(0.0, 0.0));
}

struct KeyRig {
  std::string path;
  std::shared_ptr<ApiKeys> keys;
  std::unique_ptr<testing::GatewayRig> rig;
};

KeyRig key_rig(const std::string& name, const std::string& keys_yaml, const std::string& log_dir = "") {
  KeyRig k;
  const std::string dir = conductor::testing::temp_dir() + "/" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  k.path = dir + "/keys.yaml";
  write_file(k.path, keys_yaml);
  auto world = testing::make_test_world(300, 1);
  k.keys = std::make_shared<ApiKeys>(k.path, world.live->workers(), std::make_shared<LocalUsage>());
  RigOptions ro;
  ro.tls = false;
  ro.max_steps = 1;
  ro.keys = k.keys;
  ro.log.dir = log_dir;
  k.rig = make_rig(ro);
  return k;
}

TEST(ApiKeys, BearerOrXApiKeyElse401) {
  KeyRig k = key_rig("keys-401", "keys:\n" + key_entry("team-a", "sk-good"));
  const int port = k.rig->port();
  const TraceSet& T = *k.rig->t.world->traces;
  const std::string body = chat_body(T.query_text[clean_query(T)]);
  auto none = call(port, "/v1/chat/completions", body, {});
  EXPECT_EQ(none.status, 401);
  EXPECT_NE(none.body.find("missing API key"), std::string::npos) << none.body;
  auto wrong = call(port, "/v1/chat/completions", body, bearer("sk-bad"));
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(json::parse(wrong.body)["error"]["type"], "authentication_error");
  EXPECT_EQ(call(port, "/v1/chat/completions", body, bearer("sk-good")).status, 200);
  EXPECT_EQ(call(port, "/v1/chat/completions", body, {{"x-api-key", "sk-good"}}).status, 200);
  // Every /v1/ endpoint is guarded; health and metrics are not.
  EXPECT_EQ(call(port, "/v1/route", R"({"query": "x"})", {}).status, 401);
  EXPECT_EQ(call(port, "/v1/route", R"({"query": "x"})", bearer("sk-good")).status, 200);
  EXPECT_EQ(testing::get(port, "/v1/models").status, 401);
  EXPECT_EQ(testing::get(port, "/healthz").status, 200);
  // The Anthropic door answers in its own error shape.
  auto m = call(port, "/v1/messages", R"({"model": "conductor", "max_tokens": 5, "messages": []})", {});
  EXPECT_EQ(m.status, 401);
  EXPECT_EQ(json::parse(m.body)["error"]["type"], "authentication_error");
  EXPECT_EQ(json::parse(m.body)["type"], "error");
  const std::string metrics = testing::get(port, "/metrics").body;
  EXPECT_NE(metrics.find("conductor_auth_failures_total 5\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("conductor_key_requests_total{key=\"team-a\",result=\"admitted\"} 3\n"), std::string::npos);
}

TEST(ApiKeys, RateLimitAnswers429WithRetryAfter) {
  KeyRig k = key_rig("keys-rpm", "keys:\n" + key_entry("slow", "sk-slow", "requests_per_minute: 2"));
  const int port = k.rig->port();
  // A window boundary between the calls would reset the count: start early in a minute.
  const UsageWindows w = UsageWindows::at(static_cast<int64_t>(std::time(nullptr)));
  if (w.seconds_to_next_minute < 10) std::this_thread::sleep_for(std::chrono::duration<double>(w.seconds_to_next_minute + 0.1));
  EXPECT_EQ(call(port, "/v1/route", R"({"query": "x"})", bearer("sk-slow")).status, 200);
  EXPECT_EQ(call(port, "/v1/route", R"({"query": "x"})", bearer("sk-slow")).status, 200);
  auto third = call(port, "/v1/route", R"({"query": "x"})", bearer("sk-slow"));
  EXPECT_EQ(third.status, 429);
  EXPECT_EQ(json::parse(third.body)["error"]["type"], "rate_limit_exceeded");
  const int retry = std::stoi(third.header("retry-after"));
  EXPECT_GE(retry, 1);
  EXPECT_LE(retry, 60);
  EXPECT_NE(testing::get(port, "/metrics").body.find("conductor_key_requests_total{key=\"slow\",result=\"rate_limited\"} 1\n"),
            std::string::npos);
}

TEST(ApiKeys, ABudgetSpentAnswers429UntilTheNextDayAndSpendIsLoggedPerKey) {
  const std::string log_dir = conductor::testing::temp_dir() + "/keys-budget-log";
  fs::remove_all(log_dir);
  KeyRig k = key_rig("keys-budget", "keys:\n" + key_entry("tiny", "sk-tiny", "budget_usd_per_day: 1e-12") +
                                         key_entry("rich", "sk-rich", "budget_usd_per_month: 1000"),
                     log_dir);
  const int port = k.rig->port();
  const TraceSet T = *k.rig->t.world->traces;
  const std::string body = chat_body(T.query_text[clean_query(T)]);
  auto first = call(port, "/v1/chat/completions", body, bearer("sk-tiny"));
  ASSERT_EQ(first.status, 200) << first.body;
  const double cost = std::stod(first.header("x-conductor-cost-usd"));
  ASSERT_GT(cost, 0.0);
  // The first request crossed the budget: the next one is refused until the next UTC day.
  auto second = call(port, "/v1/chat/completions", body, bearer("sk-tiny"));
  EXPECT_EQ(second.status, 429) << second.body;
  EXPECT_EQ(json::parse(second.body)["error"]["type"], "insufficient_quota");
  EXPECT_NE(second.body.find("daily budget"), std::string::npos);
  const int retry = std::stoi(second.header("retry-after"));
  EXPECT_GE(retry, 1);
  EXPECT_LE(retry, 86400);
  // Routing spends nothing: /v1/route still works for the key.
  EXPECT_EQ(call(port, "/v1/route", R"({"query": "x"})", bearer("sk-tiny")).status, 200);
  EXPECT_EQ(call(port, "/v1/chat/completions", body, bearer("sk-rich")).status, 200);
  const std::string metrics = testing::get(port, "/metrics").body;
  std::ostringstream expect;
  expect << "conductor_key_spend_usd{key=\"tiny\",period=\"day\"} ";
  const auto at = metrics.find(expect.str());
  ASSERT_NE(at, std::string::npos) << metrics;
  EXPECT_NEAR(std::stod(metrics.substr(at + expect.str().size())), cost, 1e-9 + 1e-5 * cost);
  EXPECT_NE(metrics.find("conductor_key_requests_total{key=\"tiny\",result=\"over_budget\"} 1\n"), std::string::npos);
  k.rig.reset();
  // Decision rows carry the key id, never the key.
  int tiny = 0, rich = 0;
  for (const auto& e : fs::directory_iterator(log_dir)) {
    const std::string text = testing::read_all(e.path().string());
    EXPECT_EQ(text.find("sk-tiny"), std::string::npos);
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      const json row = json::parse(line);
      tiny += row.value("key_id", "") == "tiny";
      rich += row.value("key_id", "") == "rich";
    }
  }
  EXPECT_EQ(tiny, 2);  // the chat request and the route request
  EXPECT_EQ(rich, 1);
  // The rows with key_id import as decision logs.
  ImportReport rep;
  EXPECT_EQ(import_jsonl({log_dir}, {}, rep).decisions.size(), 3u);
}

TEST(ApiKeys, AKeyMayUseOnlyItsWorkers) {
  auto world = testing::make_test_world(300, 1);
  const std::string w0 = world.live->workers()[0], w1 = world.live->workers()[1];
  KeyRig k = key_rig("keys-workers", "keys:\n" + key_entry("narrow", "sk-narrow", "workers: [" + w1 + "]"));
  const int port = k.rig->port();
  const TraceSet& T = *k.rig->t.world->traces;
  for (int q = 0; q < 5; ++q) {
    auto resp = call(port, "/v1/chat/completions", chat_body(T.query_text[clean_query(T, q)]), bearer("sk-narrow"));
    ASSERT_EQ(resp.status, 200) << resp.body;
    EXPECT_EQ(resp.header("x-conductor-route"), w1);
  }
  json body = json::parse(chat_body(T.query_text[clean_query(T)]));
  body["conductor"] = {{"available", {w0}}};
  auto refused = call(port, "/v1/chat/completions", body.dump(), bearer("sk-narrow"));
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_NE(refused.body.find(w0), std::string::npos);
}

TEST(ApiKeys, ReloadTakesANewFileAndKeepsTheOldOneWhenTheNewIsBroken) {
  KeyRig k = key_rig("keys-reload", "keys:\n" + key_entry("one", "sk-one"));
  const int port = k.rig->port();
  EXPECT_EQ(call(port, "/v1/route", R"({"query": "x"})", bearer("sk-two")).status, 401);
  write_file(k.path, "keys:\n" + key_entry("two", "sk-two"));
  EXPECT_TRUE(k.keys->reload());
  EXPECT_EQ(call(port, "/v1/route", R"({"query": "x"})", bearer("sk-two")).status, 200);
  EXPECT_EQ(call(port, "/v1/route", R"({"query": "x"})", bearer("sk-one")).status, 401);
  write_file(k.path, "keys:\n  - {id: two, sha256: not-a-hash}\n");
  EXPECT_FALSE(k.keys->reload());
  EXPECT_EQ(call(port, "/v1/route", R"({"query": "x"})", bearer("sk-two")).status, 200);
  const std::string metrics = testing::get(port, "/metrics").body;
  EXPECT_NE(metrics.find("conductor_keys_reloads_total 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("conductor_keys_reload_failures_total 1\n"), std::string::npos);
}

TEST(ApiKeys, WithoutKeysOnlyLoopbackUnlessAllowed) {
  const auto router = testing::random_router(100, 1).router;
  HttpServerOptions o;
  o.port = 0;
  o.host = "0.0.0.0";
  try {
    ConductorService s(router, nullptr, o);
    FAIL() << "bound 0.0.0.0 without keys";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("without client API keys"), std::string::npos) << e.what();
  }
  // Explicitly allowed: constructed (not started: the tests bind loopback only).
  EXPECT_NO_THROW(ConductorService(router, nullptr, o, {}, {}, nullptr, /*allow_unauthenticated=*/true));
  o.host = "127.0.0.1";
  EXPECT_NO_THROW(ConductorService(router, nullptr, o));
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host("10.0.0.1"));
}

}  // namespace
}  // namespace conductor::serve

namespace conductor::serve {
namespace {

// A redis-server of its own on a free loopback port (skipped where it is not installed).
class RedisServer {
 public:
  RedisServer() {
    if (std::system("command -v redis-server > /dev/null 2>&1") != 0) return;
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port_ = a.local_endpoint().port();
    a.close();
    pid_ = fork();
    if (pid_ == 0) {
      const std::string port = std::to_string(port_);
      const int null_fd = open("/dev/null", O_WRONLY);  // async-signal-safe, unlike stdio after fork
      if (null_fd >= 0) dup2(null_fd, 1);
      execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 200; ++i) {  // up to 10 s
      boost::system::error_code ec;
      boost::asio::ip::tcp::socket s(ioc);
      s.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port_)}, ec);
      if (!ec) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    stop();
  }
  ~RedisServer() { stop(); }
  bool running() const { return pid_ > 0; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  int port_ = 0;
  pid_t pid_ = -1;
};

TEST(RedisUsageStore, TwoStoresShareOneCountAndSpendAndADownStoreRefusesWith503) {
  RedisServer redis;
  if (!redis.running()) GTEST_SKIP() << "redis-server is not installed (apt-get install redis-server)";
  RedisUsage a(redis.url()), b(redis.url());
  const UsageWindows w = UsageWindows::at(static_cast<int64_t>(std::time(nullptr)));
  EXPECT_EQ(a.count_request("k", w), 1);
  EXPECT_EQ(b.count_request("k", w), 2);
  EXPECT_EQ(a.count_request("other", w), 1);
  a.add_spend("k", w, 0.25);
  b.add_spend("k", w, 0.5);
  const auto [day, month] = a.spend("k", w);
  EXPECT_DOUBLE_EQ(day, 0.75);
  EXPECT_DOUBLE_EQ(month, 0.75);
  EXPECT_EQ(b.spend("nobody", w), std::make_pair(0.0, 0.0));

  // Keys over Redis; then Redis goes away: requests are refused with 503, never let through.
  const std::string dir = conductor::testing::temp_dir() + "/keys-redis";
  fs::create_directories(dir);
  write_file(dir + "/keys.yaml", "keys:\n" + key_entry("r", "sk-r", "requests_per_minute: 1000"));
  ApiKeys keys(dir + "/keys.yaml", {}, std::make_shared<RedisUsage>(redis.url()));
  HttpRequest req;
  req.headers = {{"authorization", "Bearer sk-r"}};
  EXPECT_TRUE(keys.admit(req, true).ok);
  redis.stop();
  const Admission down = keys.admit(req, true);
  EXPECT_FALSE(down.ok);
  EXPECT_EQ(down.refusal.status, 503);
  EXPECT_NE(down.refusal.body.find("usage store"), std::string::npos);
  EXPECT_THROW(RedisUsage(redis.url()), Error);  // start-up checks the server
  EXPECT_THROW(RedisUsage("http://127.0.0.1:1"), Error);
}

}  // namespace
}  // namespace conductor::serve
