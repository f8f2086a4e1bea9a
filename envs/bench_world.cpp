#include "envs/bench_world.h"

#include <string>

#include "core/random.h"
#include "envs/conductor_env.h"

namespace conductor {

// A full-information world of `workers` x `queries` with every call logged, for throughput only.
TraceSet bench_world(int workers, int queries, uint64_t seed) {
  static const char* words[] = {"compute", "the", "sum", "which", "planet", "largest", "write", "function",
                                "python", "list", "sort", "answer", "question", "explain", "why", "how"};
  TraceSet t;
  t.source = "bench world";
  for (int m = 0; m < workers; ++m) {
    t.model_name.push_back("worker-" + std::to_string(m));
    t.model_provider.push_back("provider-" + std::to_string(m % 4));
    t.price_in_per_mtok.push_back(0.1 * (m + 1));
    t.price_out_per_mtok.push_back(0.3 * (m + 1));
  }
  Rng rng(seed);
  for (int q = 0; q < queries; ++q) {
    t.query_id.push_back("q" + std::to_string(q));
    t.query_task.push_back(q % 3 == 0 ? "code" : q % 3 == 1 ? "math" : "knowledge");
    std::string text;
    for (int w = 0; w < 12; ++w) text += std::string(words[rng.below(16)]) + " ";
    t.query_text.push_back(text);
    t.input_tokens.push_back(20 + static_cast<int>(rng.below(400)));
    t.split.push_back(0);
  }
  t.allocate_outcomes();
  for (int q = 0; q < queries; ++q)
    for (int m = 0; m < workers; ++m) {
      const std::size_t k = t.at(q, m);
      t.quality[k] = rng.uniform() < 0.4 + 0.05 * m ? 1.f : 0.f;
      t.answer[k] = t.quality[k] > 0 ? 0 : 1 + static_cast<int>(rng.below(3));
      t.output_tokens[k] = 10 + static_cast<int>(rng.below(300));
      t.cost_usd[k] = (t.price_in_per_mtok[m] * t.input_tokens[q] + t.price_out_per_mtok[m] * t.output_tokens[k]) / 1e6;
      t.latency_s[k] = static_cast<float>(0.3 + t.output_tokens[k] / 80.0);
      t.error[k] = kOk;
    }
  return t;
}

void round_robin_actions(const ConductorEnv& env, long long it, int32_t* actions) {
  const int N = env.num_envs(), A = env.spec().n_actions;
  const uint8_t* mask = env.action_mask();
  for (int i = 0; i < N; ++i) {
    int a = static_cast<int>((i + it) % env.n_workers());
    const uint8_t* m = mask + static_cast<std::size_t>(i) * A;
    if (!m[a])
      for (a = 0; a < A && !m[a]; ++a) {
      }
    actions[i] = a;
  }
}

}  // namespace conductor
