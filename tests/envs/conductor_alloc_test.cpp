// step() must not allocate: a counting global operator new (this test binary only) measures the
// allocations made while stepping a warmed-up environment with faults, pools and multi-step
// workflows.
// Replacing the global operator new/delete with malloc/free is intended here.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "core/config.h"
#include "envs/conductor_env.h"
#include "envs/conformance.h"
#include "tests/envs/conductor_fixtures.h"

namespace {
std::atomic<long> g_allocations{0};
}

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace conductor {
namespace {

TEST(ConductorEnv, StepDoesNotAllocate) {
  auto traces = std::make_shared<const TraceSet>(testing::tiny_world());
  ConfigDoc doc = ConfigDoc::load_string(
      "max_steps: 3\npool: {randomize: true, min_size: 2}\nreward: {budget: {mode: lagrange, target_mean_cost_usd: 0.001}}\n"
      "faults:\n  - {type: outage, worker: w3, rate: 0.1, duration: 3}\n  - {type: timeout, worker: all, prob: 0.1}\n"
      "  - {type: latency_spike, worker: w1, prob: 0.3, factor: 2}\n  - {type: price_change, worker: w0, factor: 2, at_episode: 5}\n"
      "  - {type: task_mix, at_episode: 8, weights: {math: 1, trivia: 3}}\n",
      "env.yaml");
  ConfigReader r = doc.root();
  const ConductorEnvConfig c = ConductorEnvConfig::parse(r);
  ConductorEnv env(c, ConductorWorld::build(c, traces), 16);
  Rng rng(3);
  std::vector<int32_t> actions(16);
  for (int s = 0; s < 20; ++s) {  // warm up
    testing::conformance_detail::random_actions(env, rng, actions);
    env.step(actions.data());
  }
  long steps_with_allocation = 0;
  int episodes = 0;
  for (int s = 0; s < 500; ++s) {
    testing::conformance_detail::random_actions(env, rng, actions);  // no allocation: sized already
    const long before = g_allocations.load();
    env.step(actions.data());
    steps_with_allocation += g_allocations.load() != before;
    episodes += static_cast<int>(env.finished().size());
  }
  EXPECT_EQ(steps_with_allocation, 0);
  // The counter does see allocations (the check can fail).
  static std::vector<int>* volatile sink = nullptr;
  const long before = g_allocations.load();
  sink = new std::vector<int>(100);
  delete sink;
  EXPECT_GE(g_allocations.load() - before, 2);
  EXPECT_GT(episodes, 500);
}

}  // namespace
}  // namespace conductor
