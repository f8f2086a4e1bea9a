#include "bench/commands.h"

namespace conductor::bench {

void add_bench_commands(CLI::App& bench) {
  add_bench_encoder(bench);
  add_bench_model(bench);
  add_bench_serve(bench);
  add_bench_gateway(bench);
  add_bench_stream(bench);
  add_bench_traffic(bench);
  add_bench_tokenizer(bench);
  add_bench_ppo(bench);
  add_bench_env(bench);
}

}  // namespace conductor::bench
