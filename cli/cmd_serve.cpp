// `conductor export`, `conductor serve`, `conductor replay-server`, `conductor bench serve`
// (docs/serving.md).
#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>
#include <cstdio>
#include <filesystem>
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
#include "policies/export.h"
#include "serve/load_gen.h"
#include "serve/replay_server.h"
#include "serve/service.h"
#include "traces/store.h"

namespace conductor::cli {
namespace {

using serve::ConductorService;
using serve::HttpServerOptions;

std::shared_ptr<serve::Router> router_for_export(const std::string& dir) {
  LoadedExport e = load_export_bundle(dir);
  const json& world = e.manifest["world"];
  if (world.is_null())
    fail(dir, ": this export's policy was trained on env '", e.manifest.value("env_id", "?"),
         "', not the conductor env: there is nothing to route");
  auto live = ConductorLiveWorld::from_spec(world, dir + "/manifest.json");
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
  cmd->add_option("--export", *dir, "Export directory (conductor export)")->required();
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
    auto router = router_for_export(*dir);
    std::shared_ptr<serve::Gateway> gateway;
    if (cfg.gateway) gateway = std::make_shared<serve::Gateway>(router, *cfg.gateway);
    StopSignals signals(/*ignore_sigpipe=*/true);
    ConductorService service(router, gateway, cfg.server);
    service.start();
    log_info("conductor serve: ", router->model_version(), " on http://", cfg.server.host, ":", service.port(), " (",
             cfg.server.threads, " threads, ", router->world().workers().size(), " workers, gateway ",
             gateway ? std::to_string(cfg.gateway->providers.size()) + " providers" : std::string("off"), ")");
    const int sig = StopSignals::wait();
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
  cmd->add_option("--traces", *traces, "Trace file (HDF5)")->required();
  cmd->add_option("--host", *host, "Address to bind");
  cmd->add_option("--port", *port, "Port (0 = any free port)");
  cmd->add_option("--speedup", *speedup, "Divide logged latencies by this factor");
  cmd->add_option("--fail", *fails, "Worker that answers 503 to everything (repeatable)");
  cmd->add_option("--add-latency", *adds, "WORKER=SECONDS added to that worker's answers (repeatable)");
  cmd->add_option("--threads", *threads, "Event-loop threads");
  cmd->callback([=] {
    serve::ReplayOptions o;
    o.speedup = *speedup;
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
    StopSignals signals(/*ignore_sigpipe=*/true);
    serve::HttpServer server(so, [&providers](serve::HttpRequest& req, serve::Responder respond) {
      providers.handle(req, std::move(respond));
    });
    providers.attach(&server);
    server.start();
    log_info("conductor replay-server: ", providers.traces().n_models(), " workers, ", providers.traces().n_queries(),
             " queries on http://", *host, ":", server.port(), "/v1 (speedup ", *speedup, ")");
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
      results.push_back({{"connections", c}, {"requests_per_s", r.requests_per_s}, {"p50_ms", r.p50_ms},
                         {"p90_ms", r.p90_ms}, {"p99_ms", r.p99_ms}, {"max_ms", r.max_ms},
                         {"requests", r.requests}, {"non_200", r.non_200}, {"seconds", r.seconds}});
    }
    if (!json_out->empty())
      write_json_atomic(*json_out, {{"benchmark", "serve /v1/route"}, {"model_version", version},
                                    {"server_threads", *threads}, {"results", results}});
    if (service) service->drain(5.0);
  });
}

void setup_serving(CLI::App& app) {
  setup_export(app);
  setup_serve(app);
  setup_replay_server(app);
  setup_bench_serve(app);
}

}  // namespace
CONDUCTOR_COMMAND(setup_serving);
}  // namespace conductor::cli
