// A small full-information world built in memory for the conductor environment tests.
//
// 4 workers (w0 cheap and weak ... w3 expensive and strong), 60 queries over two tasks, splits
// train (q % 3 == 0, 1) / test (q % 3 == 2). Multiple choice: the correct answer is 0; a wrong answer
// is 1 or 2. Quality is 1 when correct, else 0. Costs, latencies and tokens vary per call so that
// sums are not trivially equal. All values come from a seeded Rng, so the world is fixed.
#pragma once

#include <memory>
#include <string>

#include "core/random.h"
#include "traces/trace_set.h"

namespace conductor::testing {

inline TraceSet tiny_world(int n_queries = 60, bool with_latency = true) {
  TraceSet t;
  t.source = "tiny test world";
  t.model_name = {"w0", "w1", "w2", "w3"};
  t.model_provider = {"p0", "p1", "p2", "p3"};
  t.price_in_per_mtok = {0.1, 0.5, 2.0, 10.0};
  t.price_out_per_mtok = {0.2, 1.0, 6.0, 30.0};
  const double skill[4] = {0.35, 0.55, 0.7, 0.9};
  Rng rng(2024);
  for (int q = 0; q < n_queries; ++q) {
    t.query_id.push_back("q" + std::to_string(q));
    t.query_task.push_back(q % 2 ? "math" : "trivia");
    t.query_text.push_back(std::string(q % 2 ? "compute the sum of " : "who wrote the novel ") + std::to_string(q * 7) +
                           (q % 4 < 2 ? " quickly" : " with a long explanation please"));
    t.input_tokens.push_back(20 + q % 13);
    t.split.push_back(q % 3 == 2 ? 2 : 0);
  }
  t.allocate_outcomes();
  for (int q = 0; q < n_queries; ++q)
    for (int m = 0; m < 4; ++m) {
      const std::size_t k = t.at(q, m);
      const double difficulty = (q % 5) * 0.1;
      const bool correct = rng.uniform() < skill[m] - difficulty + (q % 2 ? 0.05 : -0.05);
      t.quality[k] = correct ? 1.f : 0.f;
      t.answer[k] = correct ? 0 : 1 + static_cast<int>(rng.below(2));
      t.output_tokens[k] = 10 + static_cast<int>(rng.below(200));
      t.cost_usd[k] = (t.price_in_per_mtok[m] * t.input_tokens[q] + t.price_out_per_mtok[m] * t.output_tokens[k]) / 1e6;
      t.latency_s[k] = with_latency ? static_cast<float>(0.2 + 0.1 * m + t.output_tokens[k] / (60.0 - 10 * m)) : kMissingF;
      t.error[k] = kOk;
    }
  return t;
}

}  // namespace conductor::testing
