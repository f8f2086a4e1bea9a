#include "eval/baselines.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/random.h"

namespace conductor::eval {


std::vector<QueryResult> run_single(const ReplayTable& table, int worker) {
  CONDUCTOR_CHECK(worker >= 0 && static_cast<std::size_t>(worker) < table.n_workers());
  std::vector<QueryResult> out;
  out.reserve(table.n_queries());
  for (std::size_t r = 0; r < table.n_queries(); ++r) out.push_back(single_call(table, r, worker));
  return out;
}

std::vector<QueryResult> run_random(const ReplayTable& table, uint64_t seed) {
  Rng rng(seed);
  std::vector<QueryResult> out;
  out.reserve(table.n_queries());
  for (std::size_t r = 0; r < table.n_queries(); ++r)
    out.push_back(single_call(table, r, static_cast<int>(rng.below(table.n_workers()))));
  return out;
}

std::vector<QueryResult> run_oracle(const ReplayTable& table) {
  std::vector<QueryResult> out;
  out.reserve(table.n_queries());
  for (std::size_t r = 0; r < table.n_queries(); ++r) {
    int best = 0;
    for (std::size_t m = 1; m < table.n_workers(); ++m) {
      const double q = table.quality[table.at(r, m)], qb = table.quality[table.at(r, best)];
      if (q > qb || (q == qb && table.cost_usd[table.at(r, m)] < table.cost_usd[table.at(r, best)]))
        best = static_cast<int>(m);
    }
    out.push_back(single_call(table, r, best));
  }
  return out;
}

}  // namespace conductor::eval
