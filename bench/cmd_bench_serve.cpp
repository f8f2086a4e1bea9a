// `conductor bench serve|gateway|stream|traffic`: the serving stack under load (docs/serving.md):
// /v1/route on loopback, the gateway against replay providers that delay every answer (a burst, and
// streaming), and open-loop chat traffic against a running `conductor serve`.
#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/commands.h"
#include "core/config.h"
#include "core/error.h"
#include "core/json_util.h"
#include "core/random.h"
#include "serve/export_router.h"
#include "serve/gateway.h"
#include "serve/service.h"
#include "serve/sim/load_gen.h"
#include "serve/sim/replay_server.h"
#include "traces/store.h"

namespace conductor::bench {
namespace {

using serve::ConductorService;
using serve::HttpServerOptions;
using serve::router_for_export;

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

long rss_kib_of(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

}  // namespace

void add_bench_serve(CLI::App& bench) {
  auto* cmd = bench.add_subcommand("serve", "Throughput and latency of POST /v1/route on loopback (closed loop, keep-alive)");
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

void add_bench_stream(CLI::App& bench) {
  auto* cmd = bench.add_subcommand(
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

void add_bench_gateway(CLI::App& bench) {
  auto* cmd = bench.add_subcommand(
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

void add_bench_traffic(CLI::App& bench) {
  auto* cmd = bench.add_subcommand(
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

}  // namespace conductor::bench
