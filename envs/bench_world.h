// A generated full-information world for throughput benchmarks of the routing environment (not a
// model of anything: every call of every worker is logged, so no pair is masked and the benchmark
// measures the environment itself). Deterministic per seed.
#pragma once

#include <cstdint>

#include "traces/trace_set.h"

namespace conductor {

// `workers` x `queries`, all in the train split, three tasks, 12-word texts, binary quality with
// comparable answers, prices x tokens costs and linear latencies.
TraceSet bench_world(int workers, int queries, uint64_t seed);

class ConductorEnv;

// The benchmarks' routing policy for step `it`: sub-environment i calls worker (i + it) mod
// n_workers (round-robin routing), or the first allowed action if that one is masked. Writes
// env.num_envs() actions.
void round_robin_actions(const ConductorEnv& env, long long it, int32_t* actions);

}  // namespace conductor
