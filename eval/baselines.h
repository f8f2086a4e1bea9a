// Baseline policies replayed on a full-information ReplayTable.
//
//  - single(m): always worker m. cheapest / best single are single() at the worker with the lowest
//    mean cost / highest mean quality on the TRAINING table (never chosen on the split evaluated).
//  - random: a uniformly random worker per query (seeded).
//  - oracle: per query the best quality, ties to the cheapest (= the cheapest correct worker when
//    quality is 0/1, RouterBench's oracle). An upper bound, not a deployable policy.
//  - router and cascade: the rules of world/baseline_rules.h (also the environment's experts).
#pragma once

#include <cstdint>
#include <vector>

#include "eval/metrics.h"
#include "world/baseline_rules.h"
#include "world/replay_table.h"

namespace conductor::eval {

std::vector<QueryResult> run_single(const ReplayTable& table, int worker);
std::vector<QueryResult> run_random(const ReplayTable& table, uint64_t seed);
std::vector<QueryResult> run_oracle(const ReplayTable& table);

}  // namespace conductor::eval
