// `conductor bench env`: batched steps per second of the routing environment (envs/conductor_env.h)
// at 1 and 2 threads, on a generated world or a trace file's test split.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <thread>

#include "bench/commands.h"
#include "core/config.h"
#include "core/random.h"
#include "envs/bench_world.h"
#include "envs/conductor_env.h"
#include "traces/store.h"

namespace conductor::bench {
namespace {

struct BenchOptions {
  std::string traces;
  int workers = 11;
  int queries = 4096;
  int num_envs = 256;
  int max_steps = 1;
  double seconds = 2.0;
};

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Runs `threads` environments (one per thread) for `seconds`; returns total steps per wall-clock
// second, and in *cpu_rate the sum over threads of steps per second of the thread's own CPU time
// (what the threads would do on otherwise idle cores).
double bench_threads(const ConductorEnvConfig& cfg, std::shared_ptr<const ConductorWorld> world,
                     const BenchOptions& o, int threads, long long* steps_out, double* cpu_rate) {
  std::vector<std::unique_ptr<ConductorEnv>> envs;
  for (int t = 0; t < threads; ++t) {
    envs.push_back(std::make_unique<ConductorEnv>(cfg, world, o.num_envs));
    envs.back()->reset(derive_seed(7, t));
  }
  std::atomic<bool> stop{false};
  std::vector<long long> steps(threads, 0);
  std::vector<double> cpu(threads, 0.0);
  auto worker = [&](int t) {
    const double c0 = thread_cpu_seconds();
    ConductorEnv& env = *envs[t];
    const int N = env.num_envs();
    std::vector<int32_t> actions(N);
    long long n = 0, it = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      for (int r = 0; r < 64; ++r, ++it) {
        round_robin_actions(env, it, actions.data());
        env.step(actions.data());
        n += N;
      }
    }
    steps[t] = n;
    cpu[t] = thread_cpu_seconds() - c0;
  };
  // Warm-up: touch every buffer once.
  for (auto& e : envs) {
    std::vector<int32_t> a(o.num_envs, 0);
    const int A = e->spec().n_actions;
    for (int i = 0; i < o.num_envs; ++i)
      while (!e->action_mask()[static_cast<std::size_t>(i) * A + a[i]]) ++a[i];
    e->step(a.data());
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker, t);
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  stop = true;
  for (auto& th : pool) th.join();
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  long long total = 0;
  *cpu_rate = 0;
  for (int t = 0; t < threads; ++t) {
    total += steps[t];
    if (cpu[t] > 0) *cpu_rate += steps[t] / cpu[t];
  }
  *steps_out = total;
  return total / dt;
}

void run_bench_env(const BenchOptions& o) {
  std::shared_ptr<const TraceSet> traces;
  if (!o.traces.empty())
    traces = std::make_shared<const TraceSet>(read_traces(o.traces));
  else
    traces = std::make_shared<const TraceSet>(bench_world(o.workers, o.queries, 1));
  std::string yaml = "max_steps: " + std::to_string(o.max_steps) + "\nsplit: " +
                     (o.traces.empty() ? std::string("train") : std::string("test")) + "\n";
  ConfigDoc doc = ConfigDoc::load_string(yaml, "bench env");
  ConfigReader r = doc.root();
  const ConductorEnvConfig cfg = ConductorEnvConfig::parse(r);
  const auto world = ConductorWorld::build(cfg, traces);
  const int M = static_cast<int>(world->workers.size());
  {
    ConductorEnv probe(cfg, world, 1);
    std::cout << "routing environment: " << M << " workers, max_steps " << o.max_steps << ", obs_dim "
              << probe.spec().obs_dim << ", " << o.num_envs << " envs per thread, "
              << world->split_queries.size() << " queries (" << (o.traces.empty() ? "bench world" : o.traces) << ")\n";
  }
  {
    std::ifstream load("/proc/loadavg");
    std::string l1;
    if (load >> l1) std::cout << "load average (1 min) before the run: " << l1 << " on " << std::thread::hardware_concurrency() << " cores\n";
  }
  std::cout << std::left << std::setw(9) << "threads" << std::right << std::setw(14) << "steps" << std::setw(10)
            << "seconds" << std::setw(16) << "steps/s" << std::setw(22) << "steps/s per CPU-s" << "\n";
  double best = 0;
  for (int threads : {1, 2}) {
    long long steps = 0;
    double cpu_rate = 0;
    const double rate = bench_threads(cfg, world, o, threads, &steps, &cpu_rate);
    best = std::max(best, rate);
    std::cout << std::left << std::setw(9) << threads << std::right << std::setw(14) << steps << std::setw(10)
              << std::fixed << std::setprecision(2) << o.seconds << std::setw(16) << std::setprecision(0) << rate
              << std::setw(22) << cpu_rate << "\n";
  }
  std::cout << "env_steps_per_s: " << std::fixed << std::setprecision(0) << best << "\n";
}

}  // namespace

void add_bench_env(CLI::App& bench) {
    auto o = std::make_shared<BenchOptions>();
  CLI::App* c = bench.add_subcommand(
      "env", "Batched steps per second of the routing environment at 1 and 2 threads (last line: env_steps_per_s)");
  c->add_option("--traces", o->traces, "bench on this trace file's test split instead of a generated world");
  c->add_option("--workers", o->workers, "workers of the generated world")->check(CLI::Range(1, 64));
  c->add_option("--queries", o->queries, "queries of the generated world")->check(CLI::Range(1, 10000000));
  c->add_option("--num-envs", o->num_envs, "sub-environments per thread")->check(CLI::Range(1, 1 << 20));
  c->add_option("--max-steps", o->max_steps, "max_steps of the environment (1 = single-step routing)")
      ->check(CLI::Range(1, 64));
  c->add_option("--seconds", o->seconds, "measured seconds per thread count")->check(CLI::Range(0.1, 600.0));
  c->callback([o]() { run_bench_env(*o); });
}

}  // namespace conductor::bench
