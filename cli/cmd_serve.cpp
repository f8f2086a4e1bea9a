// `conductor export`, `conductor serve`, `conductor replay-server`, `conductor bench serve`
// (docs/serving.md).
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <thread>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <cmath>
#include <iostream>
#include <map>
#include <set>

#include "cli/command.h"
#include "core/config.h"
#include "core/error.h"
#include "core/json_util.h"
#include "core/log.h"
#include "core/signals.h"
#include "envs/conductor_live.h"
#include "policies/query_encoder.h"
#include "policies/export.h"
#include "serve/api_keys.h"
#include "serve/sim/load_gen.h"
#include "serve/redis_usage.h"
#include "serve/sim/replay_server.h"
#include "serve/service.h"
#include "core/random.h"
#include "traces/store.h"

namespace conductor::cli {
namespace {

using serve::ConductorService;
using serve::HttpServerOptions;

// SIGHUP as a request to reload the keys file: a flag the serve loop polls.
std::atomic<bool> g_reload{false};
extern "C" void conductor_on_sighup(int) { g_reload.store(true); }
class ReloadSignal {
 public:
  ReloadSignal() {
    struct sigaction sa {};
    sa.sa_handler = conductor_on_sighup;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, &old_);
  }
  ~ReloadSignal() { sigaction(SIGHUP, &old_, nullptr); }
  ReloadSignal(const ReloadSignal&) = delete;
  ReloadSignal& operator=(const ReloadSignal&) = delete;
  static bool take() { return g_reload.exchange(false); }

 private:
  struct sigaction old_ {};
};

std::shared_ptr<serve::Router> router_for_export(const std::string& dir) {
  LoadedExport e = load_export_bundle(dir);
  const json& world = e.manifest["world"];
  if (world.is_null())
    fail(dir, "/manifest.json: missing field 'world' (the workers and features a conductor routes with; "
         "env_id is '", e.manifest.value("env_id", "?"), "'): serving needs an export of a conductor-env checkpoint, "
         "made by `conductor export`");
  auto live = ConductorLiveWorld::from_spec(world, dir + "/manifest.json");
  attach_query_encoder(*live);  // features.encoder: the live embedding of each request (sha256 checked)
  return std::make_shared<serve::Router>(e.policy, live, e.model_version);
}

void setup_export(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "Export a trained checkpoint as a deployable directory (manifest + safetensors)");
  auto checkpoint = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);
  cmd->add_option("--checkpoint", *checkpoint, "Run folder (newest checkpoint) or checkpoint folder")->required();
  cmd->add_option("--out", *out, "Export directory to create")->required();
  cmd->add_flag("--force", *force, "Replace an existing export directory");
  cmd->callback([=] {
    ExportContents c = export_from_run(*checkpoint);
    write_export(*out, c, *force);
    LoadedExport e = load_export_bundle(*out);
    std::cout << "exported " << *checkpoint << " -> " << *out << "\n"
              << "  model_version " << e.model_version << "\n"
              << "  policy        " << e.manifest["policy"]["kind"].get<std::string>() << " "
              << e.manifest["policy"]["config"].dump() << "\n"
              << "  actions       " << e.manifest["action_space"]["n_actions"] << "\n"
              << "  sha256        " << e.manifest["files"]["model.safetensors"]["sha256"].get<std::string>() << "\n";
  });
}

void setup_serve(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "Serve an export over HTTP: /v1/route, /v1/chat/completions, /healthz, /metrics");
  auto dir = std::make_shared<std::string>();
  auto config = std::make_shared<std::string>();
  auto host = std::make_shared<std::string>();
  auto port = std::make_shared<int>(-1);
  auto threads = std::make_shared<int>(0);
  auto body_limit = std::make_shared<int64_t>(0);
  auto sets = std::make_shared<std::vector<std::string>>();
  auto log_dir = std::make_shared<std::string>();
  auto keys_file = std::make_shared<std::string>();
  auto allow_unauthenticated = std::make_shared<bool>(false);
  cmd->add_option("--export", *dir, "Export directory (conductor export)")->required();
  cmd->add_option("--keys", *keys_file, "Client API keys file (sha256 of each key; reloaded on SIGHUP), as auth.keys_file");
  cmd->add_flag("--allow-unauthenticated", *allow_unauthenticated,
                "Listen on a non-loopback --host without a keys file (anyone reaching it can spend the provider keys)");
  cmd->add_option("--log-dir", *log_dir, "Append every decision (and feedback) as JSONL rows to files in this directory");
  cmd->add_option("--config", *config, "serve.yaml: server options and gateway providers");
  cmd->add_option("--set", *sets, "Override a serve.yaml key: a.b=value (repeatable)");
  cmd->add_option("--host", *host, "Address to bind (default 127.0.0.1)");
  cmd->add_option("--port", *port, "Port (default 8080; 0 = any free port)");
  cmd->add_option("--threads", *threads, "Event-loop threads (default 2)");
  cmd->add_option("--body-limit", *body_limit, "Largest request body in bytes (default 1 MiB)");
  cmd->callback([=] {
    ConfigDoc doc = config->empty() ? ConfigDoc::empty("serve defaults") : ConfigDoc::load_file(*config);
    doc.apply_overrides(*sets);
    serve::ServeConfig cfg = serve::ServeConfig::parse(doc.root());
    if (!host->empty()) cfg.server.host = *host;
    if (*port >= 0) cfg.server.port = *port;
    if (*threads > 0) cfg.server.threads = *threads;
    if (*body_limit > 0) cfg.server.body_limit_bytes = static_cast<std::size_t>(*body_limit);
    if (!log_dir->empty()) cfg.log.dir = *log_dir;
    if (!keys_file->empty()) cfg.auth.keys_file = *keys_file;
    if (*allow_unauthenticated) cfg.auth.allow_unauthenticated = true;
    auto router = router_for_export(*dir);
    std::shared_ptr<serve::Gateway> gateway;
    if (cfg.gateway) gateway = std::make_shared<serve::Gateway>(router, *cfg.gateway);
    std::shared_ptr<serve::ApiKeys> keys;
    if (!cfg.auth.keys_file.empty()) {
      std::shared_ptr<serve::UsageStore> usage;
      if (!cfg.auth.redis_url.empty()) usage = std::make_shared<serve::RedisUsage>(cfg.auth.redis_url);
      else usage = std::make_shared<serve::LocalUsage>();
      keys = std::make_shared<serve::ApiKeys>(cfg.auth.keys_file, router->world().workers(), usage);
    }
    StopSignals signals(/*ignore_sigpipe=*/true);
    ReloadSignal reload;
    ConductorService service(router, gateway, cfg.server, cfg.exploration, cfg.log, keys,
                             cfg.auth.allow_unauthenticated);
    service.start();
    log_info("conductor serve: ", router->model_version(), " on http://", cfg.server.host, ":", service.port(), " (",
             cfg.server.threads, " threads, ", router->world().workers().size(), " workers, gateway ",
             gateway ? std::to_string(cfg.gateway->providers.size()) + " providers" : std::string("off"),
             ", exploration ", cfg.exploration.id(), ", decision log ",
             cfg.log.dir.empty() ? std::string("off") : cfg.log.dir, ", API keys ",
             keys ? std::to_string(keys->size()) + " (" + keys->usage().kind() + " counters)" : std::string("off"), ")");
    while (StopSignals::received() == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (ReloadSignal::take()) {
        if (keys) keys->reload();
        else log_info("conductor serve: SIGHUP: no keys file to reload");
      }
    }
    const int sig = StopSignals::received();
    log_info("conductor serve: ", sig == SIGTERM ? "SIGTERM" : "SIGINT", ": draining in-flight requests");
    service.drain(30.0);
    service.wait();
    log_info("conductor serve: stopped");
  });
}

void setup_replay_server(CLI::App& app) {
  auto* cmd = app.add_subcommand("replay-server",
                                 "OpenAI-compatible mock providers answering from a trace file (for gateway tests and demos)");
  auto traces = std::make_shared<std::string>();
  auto host = std::make_shared<std::string>("127.0.0.1");
  auto port = std::make_shared<int>(9000);
  auto speedup = std::make_shared<double>(1.0);
  auto fails = std::make_shared<std::vector<std::string>>();
  auto adds = std::make_shared<std::vector<std::string>>();
  auto threads = std::make_shared<int>(2);
  auto api = std::make_shared<std::string>("openai");
  auto delay = std::make_shared<double>(-1.0);
  auto fail_rate = std::make_shared<double>(0.0);
  auto fail_seed = std::make_shared<uint64_t>(1);
  auto tls_cert = std::make_shared<std::string>();
  auto tls_key = std::make_shared<std::string>();
  auto require_key_env = std::make_shared<std::string>();
  cmd->add_option("--traces", *traces, "Trace file (HDF5)")->required();
  cmd->add_option("--api", *api, "Wire format: openai | anthropic | gemini")->capture_default_str();
  cmd->add_option("--delay", *delay, "Every answer takes exactly this many seconds (instead of the logged latency)");
  cmd->add_option("--fail-rate", *fail_rate, "Share of requests answered 500 'injected failure' (seeded)");
  cmd->add_option("--fail-seed", *fail_seed, "Seed of the injected failures")->capture_default_str();
  cmd->add_option("--tls-cert", *tls_cert, "PEM certificate: serve HTTPS (with --tls-key)");
  cmd->add_option("--tls-key", *tls_key, "PEM private key of --tls-cert");
  cmd->add_option("--require-key-env", *require_key_env,
                  "Answer 401 unless the API's auth header carries the key in this environment variable");
  cmd->add_option("--host", *host, "Address to bind");
  cmd->add_option("--port", *port, "Port (0 = any free port)");
  cmd->add_option("--speedup", *speedup, "Divide logged latencies by this factor");
  cmd->add_option("--fail", *fails, "Worker that answers 503 to everything (repeatable)");
  cmd->add_option("--add-latency", *adds, "WORKER=SECONDS added to that worker's answers (repeatable)");
  cmd->add_option("--threads", *threads, "Event-loop threads");
  cmd->callback([=] {
    serve::ReplayOptions o;
    o.speedup = *speedup;
    o.api = serve::parse_api(*api);
    o.delay_s = *delay;
    o.fail_rate = *fail_rate;
    o.fail_seed = *fail_seed;
    if (!require_key_env->empty()) {
      const char* k = std::getenv(require_key_env->c_str());
      if (!k || !*k) fail("--require-key-env: the environment variable '", *require_key_env, "' is not set");
      o.require_key = k;
    }
    o.fail.insert(fails->begin(), fails->end());
    for (const auto& a : *adds) {
      const auto eq = a.find('=');
      if (eq == std::string::npos || eq == 0) fail("--add-latency '", a, "': expected WORKER=SECONDS");
      double s = 0;
      try {
        std::size_t used = 0;
        s = std::stod(a.substr(eq + 1), &used);
        if (used != a.size() - eq - 1) throw std::invalid_argument("trailing");
      } catch (const std::exception&) {
        fail("--add-latency '", a, "': '", a.substr(eq + 1), "' is not a number of seconds");
      }
      o.add_latency[a.substr(0, eq)] = s;
    }
    serve::ReplayProviders providers(read_traces(*traces), o);
    HttpServerOptions so;
    so.host = *host;
    so.port = *port;
    so.threads = *threads;
    so.server_name = "conductor-replay";
    so.tls_cert_file = *tls_cert;
    so.tls_key_file = *tls_key;
    StopSignals signals(/*ignore_sigpipe=*/true);
    serve::HttpServer server(so, [&providers](serve::HttpRequest& req, serve::Responder respond) {
      providers.handle(req, std::move(respond));
    });
    providers.attach(&server);
    server.start();
    log_info("conductor replay-server: ", providers.traces().n_models(), " workers, ", providers.traces().n_queries(),
             " queries on ", tls_cert->empty() ? "http" : "https", "://", *host, ":", server.port(),
             *api == "gemini" ? "/v1beta" : "/v1", " (api ", *api, ", speedup ", *speedup,
             *delay >= 0 ? ", delay " + std::to_string(*delay) + " s" : std::string(),
             *fail_rate > 0 ? ", fail rate " + std::to_string(*fail_rate) : std::string(), ")");
    StopSignals::wait();
    server.drain(10.0);
    server.wait();
  });
}

void setup_bench_serve(CLI::App& app) {
  auto* bench = group(app, "bench", "Benchmarks");
  auto* cmd = bench->add_subcommand("serve", "Throughput and latency of POST /v1/route on loopback (closed loop, keep-alive)");
  auto dir = std::make_shared<std::string>();
  auto conns = std::make_shared<std::vector<int>>(std::vector<int>{16, 64});
  auto duration = std::make_shared<double>(5.0);
  auto warmup = std::make_shared<double>(1.0);
  auto threads = std::make_shared<int>(1);
  auto url_port = std::make_shared<int>(0);
  auto query = std::make_shared<std::string>(
      "A train leaves at 3pm travelling 60 km/h; another leaves at 4pm at 90 km/h. When does the second catch up?");
  auto json_out = std::make_shared<std::string>();
  auto healthz = std::make_shared<bool>(false);
  cmd->add_flag("--healthz", *healthz, "After each /v1/route run, the same load on GET /healthz (the server's floor)");
  cmd->add_option("--export", *dir, "Export directory to serve in-process (omit with --port)");
  cmd->add_option("--port", *url_port, "Benchmark an already running server on 127.0.0.1:PORT instead");
  cmd->add_option("--connections", *conns, "Concurrent connections, one run each (default 16 64)");
  cmd->add_option("--duration", *duration, "Seconds measured per run");
  cmd->add_option("--warmup", *warmup, "Seconds of warm-up per run (not measured)");
  cmd->add_option("--threads", *threads, "Server event-loop threads (in-process server)");
  cmd->add_option("--query", *query, "Query text of the requests");
  cmd->add_option("--json", *json_out, "Also write the results as JSON to this file");
  cmd->callback([=] {
    if (dir->empty() == (*url_port == 0)) fail("bench serve: give exactly one of --export DIR or --port PORT");
    std::unique_ptr<ConductorService> service;
    int port = *url_port;
    std::string version = "external";
    if (!dir->empty()) {
      auto router = router_for_export(*dir);
      version = router->model_version();
      HttpServerOptions so;
      so.port = 0;
      so.threads = *threads;
      std::signal(SIGPIPE, SIG_IGN);
      service = std::make_unique<ConductorService>(router, nullptr, so);
      service->start();
      port = service->port();
    }
    const std::string body = json{{"query", *query}}.dump();
    json results = json::array();
    std::printf("bench serve: POST /v1/route, model %s, server threads %d, 1 client thread, %.1f s per run\n",
                version.c_str(), *threads, *duration);
    std::printf("%12s %12s %10s %10s %10s %10s %8s\n", "connections", "requests/s", "p50 ms", "p90 ms", "p99 ms",
                "max ms", "non-200");
    for (int c : *conns) {
      const serve::LoadResult r = serve::run_load("127.0.0.1", port, "/v1/route", body, c, *duration, *warmup);
      std::printf("%12d %12.0f %10.3f %10.3f %10.3f %10.3f %8llu\n", c, r.requests_per_s, r.p50_ms, r.p90_ms,
                  r.p99_ms, r.max_ms, static_cast<unsigned long long>(r.non_200));
      std::fflush(stdout);
      results.push_back({{"connections", c}, {"path", "/v1/route"}, {"requests_per_s", r.requests_per_s}, {"p50_ms", r.p50_ms},
                         {"p90_ms", r.p90_ms}, {"p99_ms", r.p99_ms}, {"max_ms", r.max_ms},
                         {"requests", r.requests}, {"non_200", r.non_200}, {"seconds", r.seconds}});
      if (*healthz) {
        const serve::LoadResult h = serve::run_load("127.0.0.1", port, "/healthz", "", c, *duration, *warmup);
        std::printf("%12d %12.0f %10.3f %10.3f %10.3f %10.3f %8llu  GET /healthz (/v1/route at %.2fx)\n", c,
                    h.requests_per_s, h.p50_ms, h.p90_ms, h.p99_ms, h.max_ms,
                    static_cast<unsigned long long>(h.non_200), r.requests_per_s / std::max(1.0, h.requests_per_s));
        std::fflush(stdout);
        results.push_back({{"connections", c}, {"path", "/healthz"}, {"requests_per_s", h.requests_per_s},
                           {"p50_ms", h.p50_ms}, {"p99_ms", h.p99_ms}, {"non_200", h.non_200}});
      }
    }
    if (!json_out->empty())
      write_json_atomic(*json_out, {{"benchmark", "serve /v1/route"}, {"model_version", version},
                                    {"server_threads", *threads}, {"results", results}});
    if (service) service->drain(5.0);
  });
}

// The chat body the load generators send for query q of the trace (its text, its id as query_id).
std::string chat_body_for(const TraceSet& T, std::size_t q) {
  return json{{"model", "conductor"},
              {"messages", json::array({{{"role", "user"}, {"content", T.query_text[q]}}})},
              {"conductor", {{"query_id", T.query_id[q]}}}}
      .dump();
}

std::vector<std::size_t> queries_of_split(const TraceSet& T, const std::string& split) {
  if (!T.has_text()) fail("the trace file has no query text (/queries/text): the replay providers find queries by text");
  const uint8_t s = static_cast<uint8_t>(parse_split(split));
  std::vector<std::size_t> out;
  for (std::size_t q = 0; q < T.n_queries(); ++q)
    if (T.split[q] == s && !T.query_text[q].empty()) out.push_back(q);
  if (out.empty()) fail("the trace file has no query with text in split '", split, "'");
  return out;
}

// Test-split queries every worker answered without a logged error (and with a quality): each
// request is then one call (a logged error would add retries and re-routing, i.e. several
// sequential delayed calls).
std::vector<std::size_t> clean_queries(const TraceSet& T, const std::string& split, const char* who) {
  std::vector<std::size_t> qs;
  for (std::size_t q : queries_of_split(T, split)) {
    bool ok = true;
    for (std::size_t m = 0; m < T.n_models() && ok; ++m)
      ok = T.error[T.at(q, m)] == kOk && std::isfinite(T.quality[T.at(q, m)]);
    if (ok) qs.push_back(q);
  }
  if (qs.empty()) fail(who, ": no query of split '", split, "' was answered by every worker without error");
  return qs;
}

// Replay providers answering after `delay_s` (one thread), the gateway in front of them (`extra`:
// more gateway YAML) and the service (one thread), all in this process: the bench commands' stack.
struct ReplayGatewayStack {
  std::unique_ptr<serve::ReplayProviders> providers;
  std::unique_ptr<serve::HttpServer> replay;
  std::shared_ptr<serve::Gateway> gateway;
  std::unique_ptr<ConductorService> service;
  serve::Url url() const {
    serve::Url u;
    u.host = "127.0.0.1";
    u.port = service->port();
    return u;
  }
};

ReplayGatewayStack replay_gateway_stack(const std::shared_ptr<serve::Router>& router, TraceSet T, double delay_s,
                                        int gateway_threads, int max_concurrency, const std::string& extra) {
  ReplayGatewayStack s;
  serve::ReplayOptions ro;
  ro.delay_s = delay_s;
  s.providers = std::make_unique<serve::ReplayProviders>(std::move(T), ro);
  HttpServerOptions rso;
  rso.port = 0;
  rso.threads = 1;
  auto* p = s.providers.get();
  s.replay = std::make_unique<serve::HttpServer>(rso, [p](serve::HttpRequest& req, serve::Responder respond) {
    p->handle(req, std::move(respond));
  });
  p->attach(s.replay.get());
  s.replay->start();
  std::string yaml = "threads: " + std::to_string(gateway_threads) + "\nmax_concurrency: " +
                     std::to_string(max_concurrency) + "\ncall_timeout_s: 60\n" + extra + "providers:\n";
  for (const auto& w : router->world().workers())
    if (p->traces().model_index(w) >= 0)
      yaml += "  - {worker: \"" + w + "\", base_url: \"http://127.0.0.1:" + std::to_string(s.replay->port()) + "/v1\"}\n";
  s.gateway = std::make_shared<serve::Gateway>(
      router, serve::GatewayConfig::parse(ConfigDoc::load_string(yaml, "bench gateway").root()));
  HttpServerOptions so;
  so.port = 0;
  so.threads = 1;
  s.service = std::make_unique<ConductorService>(router, s.gateway, so);
  s.service->start();
  return s;
}

void setup_bench_stream(CLI::App& app) {
  auto* bench = group(app, "bench", "Benchmarks");
  auto* cmd = bench->add_subcommand(
      "stream", "Streaming through the gateway: added time to first token, then N concurrent streams");
  auto dir = std::make_shared<std::string>();
  auto traces = std::make_shared<std::string>();
  auto samples = std::make_shared<int>(300);
  auto streams = std::make_shared<int>(300);
  auto delay = std::make_shared<double>(1.0);
  auto gw_threads = std::make_shared<int>(2);
  auto split = std::make_shared<std::string>("test");
  cmd->add_option("--export", *dir, "Export directory to serve in-process")->required();
  cmd->add_option("--traces", *traces, "Trace file the replay providers answer from (with query text)")->required();
  cmd->add_option("--samples", *samples, "Sequential streams timed per path (time to first token)")->capture_default_str();
  cmd->add_option("--streams", *streams, "Concurrent streams of the second phase")->capture_default_str();
  cmd->add_option("--delay", *delay, "Seconds each answer of the second phase takes")->capture_default_str();
  cmd->add_option("--gateway-threads", *gw_threads, "gateway.threads")->capture_default_str();
  cmd->add_option("--split", *split, "Split the queries are taken from")->capture_default_str();
  cmd->callback([=] {
    std::signal(SIGPIPE, SIG_IGN);
    auto router = router_for_export(*dir);
    const TraceSet T = read_traces(*traces);
    const std::vector<std::size_t> qs = clean_queries(T, *split, "bench stream");
    std::string worker;
    for (const auto& w : router->world().workers())
      if (worker.empty() && T.model_index(w) >= 0) worker = w;
    if (worker.empty()) fail("bench stream: the export's workers are not in the trace file");
    auto body = [&](std::size_t i, const std::string& model) {
      return json{{"model", model},
                  {"stream", true},
                  {"messages", json::array({{{"role", "user"}, {"content", T.query_text[qs[i % qs.size()]]}}})}}
          .dump();
    };
    auto stack = [&](double d) {
      return replay_gateway_stack(router, T, d, *gw_threads, 4096, "direct_workers: [\"" + worker + "\"]\n");
    };
    auto url_of = [](int port) {
      serve::Url u;
      u.host = "127.0.0.1";
      u.port = port;
      return u;
    };
    std::printf("bench stream: model %s, gateway.threads %d, server threads 1, replay threads 1, 1 client thread\n",
                router->model_version().c_str(), *gw_threads);
    {
      ReplayGatewayStack s = stack(0.0);
      std::vector<std::string> direct, routed;
      for (int i = 0; i < *samples; ++i) {
        direct.push_back(body(static_cast<std::size_t>(i), worker));
        routed.push_back(body(static_cast<std::size_t>(i), "conductor"));
      }
      const int warm = std::min(20, *samples);
      const std::vector<std::string> warm_direct(direct.begin(), direct.begin() + warm);
      serve::run_ttft(url_of(s.replay->port()), "/v1/chat/completions", warm_direct, 10.0);
      serve::run_ttft(url_of(s.service->port()), "/v1/chat/completions", warm_direct, 10.0);
      std::printf("time to first token, %d sequential streams each, one kept-alive connection, replay answers at once:\n",
                  *samples);
      std::printf("%-44s %6s %10s %10s %10s %12s\n", "path", "ok", "p50 ms", "p99 ms", "max ms", "end p50 ms");
      const serve::TtftResult a = serve::run_ttft(url_of(s.replay->port()), "/v1/chat/completions", direct, 10.0);
      const serve::TtftResult b = serve::run_ttft(url_of(s.service->port()), "/v1/chat/completions", direct, 10.0);
      const serve::TtftResult c = serve::run_ttft(url_of(s.service->port()), "/v1/chat/completions", routed, 10.0);
      auto row = [](const char* name, const serve::TtftResult& r) {
        std::printf("%-44s %6d %10.3f %10.3f %10.3f %12.3f\n", name, r.ok, r.p50_ms, r.p99_ms, r.max_ms, r.total_p50_ms);
        for (const auto& e : r.errors) std::printf("  error: %s\n", e.c_str());
      };
      row("replay provider directly", a);
      row(("gateway, model " + worker + " (relayed)").c_str(), b);
      row("gateway, model conductor (routed)", c);
      std::printf("added by the gateway: p50 %+.3f ms, p99 %+.3f ms (direct worker); p50 %+.3f ms, p99 %+.3f ms (routed)\n",
                  b.p50_ms - a.p50_ms, b.p99_ms - a.p99_ms, c.p50_ms - a.p50_ms, c.p99_ms - a.p99_ms);
      std::fflush(stdout);
    }
    // Relayed streams (a direct worker: the provider streams, the gateway relays) and routed ones.
    for (const std::string& model : {worker, std::string("conductor")}) {
      ReplayGatewayStack s = stack(*delay);
      std::vector<std::string> bodies;
      for (int i = 0; i < *streams; ++i) bodies.push_back(body(static_cast<std::size_t>(i), model));
      const serve::BurstResult r = serve::run_burst(s.url(), "/v1/chat/completions", bodies, 120.0);
      const serve::ReplayStats rs = s.providers->stats();
      std::string statuses;
      for (const auto& [code, count] : r.statuses) statuses += std::to_string(code) + ":" + std::to_string(count) + " ";
      std::printf("%d concurrent streams, model %s, each answer spread over %.3f s: wall %.3f s, p50 %.1f ms, "
                  "p99 %.1f ms, max %.1f ms, statuses %s; provider: %llu calls, %llu streamed to the gateway, %llu "
                  "completed, peak %d in flight\n",
                  *streams, model.c_str(), *delay, r.wall_s, r.p50_ms, r.p99_ms, r.max_ms, statuses.c_str(),
                  static_cast<unsigned long long>(rs.requests), static_cast<unsigned long long>(rs.streams),
                  static_cast<unsigned long long>(rs.streams_completed), rs.peak_in_flight);
      for (const auto& e : r.errors) std::printf("  error: %s\n", e.c_str());
      std::fflush(stdout);
    }
  });
}

void setup_bench_gateway(CLI::App& app) {
  auto* bench = group(app, "bench", "Benchmarks");
  auto* cmd = bench->add_subcommand(
      "gateway", "N concurrent /v1/chat/completions requests through the gateway against replay providers that delay every answer");
  auto dir = std::make_shared<std::string>();
  auto traces = std::make_shared<std::string>();
  auto n = std::make_shared<int>(300);
  auto delay = std::make_shared<double>(1.0);
  auto gw_threads = std::make_shared<int>(2);
  auto max_conc = std::make_shared<int>(256);
  auto split = std::make_shared<std::string>("test");
  auto json_out = std::make_shared<std::string>();
  cmd->add_option("--export", *dir, "Export directory to serve in-process")->required();
  cmd->add_option("--traces", *traces, "Trace file the replay providers answer from (with query text)")->required();
  cmd->add_option("--requests", *n, "Requests sent at once")->capture_default_str();
  cmd->add_option("--delay", *delay, "Seconds every provider answer takes")->capture_default_str();
  cmd->add_option("--gateway-threads", *gw_threads, "gateway.threads")->capture_default_str();
  cmd->add_option("--max-concurrency", *max_conc, "gateway.max_concurrency (calls in flight per provider)")
      ->capture_default_str();
  cmd->add_option("--split", *split, "Split the queries are taken from")->capture_default_str();
  cmd->add_option("--json", *json_out, "Also write the result as JSON to this file");
  cmd->callback([=] {
    std::signal(SIGPIPE, SIG_IGN);
    auto router = router_for_export(*dir);
    TraceSet T = read_traces(*traces);
    const std::vector<std::size_t> qs = clean_queries(T, *split, "bench gateway");
    std::vector<std::string> bodies;
    for (int i = 0; i < *n; ++i) bodies.push_back(chat_body_for(T, qs[static_cast<std::size_t>(i) % qs.size()]));
    ReplayGatewayStack stack = replay_gateway_stack(router, std::move(T), *delay, *gw_threads, *max_conc, "");
    const serve::BurstResult r = serve::run_burst(stack.url(), "/v1/chat/completions", bodies, 120.0);
    const serve::ReplayStats rs = stack.providers->stats();
    std::printf("bench gateway: %d concurrent POST /v1/chat/completions, model %s, gateway.threads %d, server threads 1,\n"
                "  replay providers answering after exactly %.3f s (peak %d calls in flight, %llu calls); queries answered by\n"
                "  every worker without a logged error (%zu of the split)\n",
                *n, router->model_version().c_str(), *gw_threads, *delay, rs.peak_in_flight,
                static_cast<unsigned long long>(rs.requests), qs.size());
    std::printf("%10s %10s %10s %10s %10s  %s\n", "requests", "wall s", "p50 ms", "p99 ms", "max ms", "statuses");
    std::string statuses;
    for (const auto& [code, count] : r.statuses) statuses += std::to_string(code) + ":" + std::to_string(count) + " ";
    std::printf("%10d %10.3f %10.1f %10.1f %10.1f  %s\n", r.requests, r.wall_s, r.p50_ms, r.p99_ms, r.max_ms,
                statuses.c_str());
    for (const auto& e : r.errors) std::printf("  error: %s\n", e.c_str());
    if (!json_out->empty()) {
      json st = json::object();
      for (const auto& [code, count] : r.statuses) st[std::to_string(code)] = count;
      write_json_atomic(*json_out, {{"benchmark", "gateway burst"}, {"requests", r.requests}, {"delay_s", *delay},
                                    {"gateway_threads", *gw_threads}, {"wall_s", r.wall_s}, {"p50_ms", r.p50_ms},
                                    {"p99_ms", r.p99_ms}, {"max_ms", r.max_ms}, {"statuses", st},
                                    {"provider_calls", rs.requests}, {"peak_in_flight", rs.peak_in_flight}});
    }
    stack.service->drain(5.0);
    stack.replay->drain(5.0);
  });
}

long rss_kib_of(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

void setup_bench_traffic(CLI::App& app) {
  auto* bench = group(app, "bench", "Benchmarks");
  auto* cmd = bench->add_subcommand(
      "traffic", "Open-loop chat traffic at a fixed rate against a running `conductor serve` (trace queries, optional feedback)");
  auto url_s = std::make_shared<std::string>();
  auto traces = std::make_shared<std::string>();
  auto split = std::make_shared<std::string>("test");
  auto rate = std::make_shared<double>(20.0);
  auto duration = std::make_shared<double>(10.0);
  auto max_requests = std::make_shared<uint64_t>(0);
  auto feedback = std::make_shared<bool>(false);
  auto every = std::make_shared<double>(10.0);
  auto seed = std::make_shared<uint64_t>(1);
  auto server_pid = std::make_shared<int>(0);
  auto json_out = std::make_shared<std::string>();
  cmd->add_option("--url", *url_s, "The server, e.g. http://127.0.0.1:8080")->required();
  cmd->add_option("--traces", *traces, "Trace file the queries (and feedback qualities) come from")->required();
  cmd->add_option("--split", *split, "Split of the queries")->capture_default_str();
  cmd->add_option("--rate", *rate, "Requests started per second")->capture_default_str();
  cmd->add_option("--duration", *duration, "Seconds of sending")->capture_default_str();
  cmd->add_option("--requests", *max_requests, "Stop after this many requests (0 = duration only)");
  cmd->add_flag("--feedback", *feedback,
                "POST /v1/feedback for every answer: the trace's quality of the worker that answered (0 for a 502)");
  cmd->add_option("--report-every", *every, "Seconds per reported interval")->capture_default_str();
  cmd->add_option("--seed", *seed, "Seed of the query draw")->capture_default_str();
  cmd->add_option("--server-pid", *server_pid, "Report this process's resident memory per interval");
  cmd->add_option("--json", *json_out, "Also write the intervals and totals as JSON to this file");
  cmd->callback([=] {
    std::signal(SIGPIPE, SIG_IGN);
    const serve::Url url = serve::parse_url(*url_s);
    const TraceSet T = read_traces(*traces);
    const auto qs = queries_of_split(T, *split);
    Rng rng(*seed);
    serve::TrafficOptions o;
    o.rate_per_s = *rate;
    o.duration_s = *duration;
    o.max_requests = *max_requests;
    o.report_every_s = *every;
    serve::TrafficRunner runner(url, o);
    std::vector<std::size_t> query_of;  // request i -> trace query
    std::map<int, uint64_t> totals;
    uint64_t feedback_sent = 0, no_quality = 0;
    json intervals = json::array();
    std::printf("%8s %8s %8s %8s %10s %10s %10s %10s  %s\n", "t s", "sent", "answered", "open", "p50 ms", "p99 ms",
                "max ms", "rss KiB", "statuses");
    runner.run(
        [&](uint64_t i) {
          const std::size_t q = qs[rng.below(qs.size())];
          query_of.push_back(q);
          return std::make_pair(std::string("/v1/chat/completions"), chat_body_for(T, q));
        },
        [&](uint64_t i, const serve::ClientResult& r, double) {
          ++totals[r.ok ? r.response.status : 0];
          if (!*feedback || !r.ok) return;
          // Every call failed: the user got no answer, a label of quality 0.
          if (r.response.status == 502 && !r.response.header("x-conductor-request-id").empty()) {
            ++feedback_sent;
            runner.send_extra("/v1/feedback", json{{"request_id", r.response.header("x-conductor-request-id")},
                                                   {"quality", 0.0}, {"source", "no_answer"}}.dump());
            return;
          }
          if (r.response.status != 200) return;
          json j;
          try {
            j = json::parse(r.response.body);
          } catch (const json::exception&) {
            return;
          }
          const int m = T.model_index(j.value("model", ""));
          const std::string id = r.response.header("x-conductor-request-id");
          if (m < 0 || id.empty() || !T.has_outcomes()) return;
          const float quality = T.quality[T.at(query_of[i], static_cast<std::size_t>(m))];
          if (!std::isfinite(quality)) {
            ++no_quality;
            return;
          }
          ++feedback_sent;
          runner.send_extra("/v1/feedback", json{{"request_id", id}, {"quality", quality}, {"source", "trace"}}.dump());
        },
        [&](const serve::TrafficInterval& iv) {
          std::string st;
          for (const auto& [code, count] : iv.statuses) st += std::to_string(code) + ":" + std::to_string(count) + " ";
          const long rss = *server_pid > 0 ? rss_kib_of(*server_pid) : -1;
          std::printf("%8.1f %8llu %8llu %8d %10.1f %10.1f %10.1f %10ld  %s\n", iv.t_end_s,
                      static_cast<unsigned long long>(iv.sent), static_cast<unsigned long long>(iv.answered),
                      iv.outstanding, iv.p50_ms, iv.p99_ms, iv.max_ms, rss, st.c_str());
          std::fflush(stdout);
          json js = json::object();
          for (const auto& [code, count] : iv.statuses) js[std::to_string(code)] = count;
          intervals.push_back({{"t_end_s", iv.t_end_s}, {"sent", iv.sent}, {"answered", iv.answered},
                               {"p50_ms", iv.p50_ms}, {"p99_ms", iv.p99_ms}, {"max_ms", iv.max_ms},
                               {"rss_kib", rss}, {"statuses", js}, {"outstanding", iv.outstanding}});
        });
    std::string st;
    json jt = json::object();
    for (const auto& [code, count] : totals) {
      st += std::to_string(code) + ":" + std::to_string(count) + " ";
      jt[std::to_string(code)] = count;
    }
    std::string fst;
    json jf = json::object();
    for (const auto& [code, count] : runner.extra_statuses()) {
      fst += std::to_string(code) + ":" + std::to_string(count) + " ";
      jf[std::to_string(code)] = count;
    }
    std::printf("total: %zu requests, statuses %s", query_of.size(), st.c_str());
    if (*feedback)
      std::printf("; feedback sent %llu (statuses %s), %llu answers without a logged quality",
                  static_cast<unsigned long long>(feedback_sent), fst.c_str(), static_cast<unsigned long long>(no_quality));
    std::printf("\n");
    if (!json_out->empty())
      write_json_atomic(*json_out, {{"benchmark", "traffic"}, {"rate_per_s", *rate}, {"requests", query_of.size()},
                                    {"statuses", jt}, {"feedback_sent", feedback_sent}, {"feedback_statuses", jf},
                                    {"intervals", intervals}});
  });
}

void setup_serving(CLI::App& app) {
  setup_export(app);
  setup_serve(app);
  setup_replay_server(app);
  setup_bench_serve(app);
  setup_bench_gateway(app);
  setup_bench_stream(app);
  setup_bench_traffic(app);
}

}  // namespace
CONDUCTOR_COMMAND(setup_serving);
}  // namespace conductor::cli
