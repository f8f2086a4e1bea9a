// Batched step throughput of the routing environment (items/s = sub-environment steps per second).
//   build-*/bin/bench_env --benchmark_filter=Routing
#include <benchmark/benchmark.h>

#include <memory>

#include "core/config.h"
#include "envs/bench_world.h"
#include "envs/conductor_env.h"

namespace {

using namespace conductor;

std::unique_ptr<ConductorEnv> make(int workers, int max_steps, int num_envs, const std::string& extra = "") {
  static auto traces = std::make_shared<const TraceSet>(bench_world(11, 4096, 1));
  ConfigDoc doc = ConfigDoc::load_string("max_steps: " + std::to_string(max_steps) + "\n" + extra, "bench");
  ConfigReader r = doc.root();
  ConductorEnvConfig cfg = ConductorEnvConfig::parse(r);
  for (int k = 0; k < workers; ++k) cfg.workers.push_back(traces->model_name[k]);
  return std::make_unique<ConductorEnv>(cfg, ConductorWorld::build(cfg, traces), num_envs);
}

void run(benchmark::State& state, ConductorEnv& env) {
  const int N = env.num_envs();
  std::vector<int32_t> actions(N);
  long long it = 0;
  for (auto _ : state) {
    round_robin_actions(env, it, actions.data());
    env.step(actions.data());
    ++it;
  }
  state.SetItemsProcessed(state.iterations() * N);
}

void BM_Routing(benchmark::State& state) {
  auto env = make(11, 1, static_cast<int>(state.range(0)));
  run(state, *env);
}
BENCHMARK(BM_Routing)->Arg(64)->Arg(256)->Arg(1024);

void BM_Workflow3(benchmark::State& state) {
  auto env = make(11, 3, static_cast<int>(state.range(0)));
  run(state, *env);
}
BENCHMARK(BM_Workflow3)->Arg(256);

void BM_RoutingWithFaults(benchmark::State& state) {
  auto env = make(11, 1, 256,
                  "pool: {randomize: true, min_size: 3}\nfaults:\n"
                  "  - {type: outage, worker: all, rate: 0.01, duration: 20}\n"
                  "  - {type: timeout, worker: all, prob: 0.02}\n");
  run(state, *env);
}
BENCHMARK(BM_RoutingWithFaults);

}  // namespace

BENCHMARK_MAIN();
