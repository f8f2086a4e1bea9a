// `conductor export`, `conductor serve`, `conductor replay-server` (docs/serving.md). The serving
// benchmarks (`conductor bench serve|gateway|stream|traffic`) are bench/cmd_bench_serve.cpp.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <thread>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/command.h"
#include "core/config.h"
#include "core/error.h"
#include "core/json_util.h"
#include "core/log.h"
#include "core/signals.h"
#include "policies/export.h"
#include "serve/api_keys.h"
#include "serve/export_router.h"
#include "serve/redis_usage.h"
#include "serve/sim/replay_server.h"
#include "serve/service.h"
#include "traces/store.h"

namespace conductor::cli {
namespace {

using serve::ConductorService;
using serve::HttpServerOptions;
using serve::router_for_export;

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

void setup_serving(CLI::App& app) {
  setup_export(app);
  setup_serve(app);
  setup_replay_server(app);
}

}  // namespace
CONDUCTOR_COMMAND(setup_serving);
}  // namespace conductor::cli
