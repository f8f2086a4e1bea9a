// `conductor bench ppo`: PPO update throughput of the MLP policy (trainer/train.h, bench_ppo_update).
#include <cstdio>
#include <memory>

#include "bench/commands.h"
#include "core/error.h"
#include "trainer/train.h"

namespace conductor::bench {

void add_bench_ppo(CLI::App& bench) {
  auto* ppo = bench.add_subcommand("ppo", "PPO update throughput of the MLP policy (samples/s)");
  auto batch = std::make_shared<int>(2048);
  auto epochs = std::make_shared<int>(4);
  auto minibatch = std::make_shared<int>(256);
  auto obs_dim = std::make_shared<int>(64);
  auto n_actions = std::make_shared<int>(14);
  auto threads = std::make_shared<int>(1);
  auto repeats = std::make_shared<int>(5);
  ppo->add_option("--batch", *batch, "Samples per update")->check(CLI::Range(1, 1 << 24));
  ppo->add_option("--epochs", *epochs, "Epochs per update")->check(CLI::Range(1, 1000));
  ppo->add_option("--minibatch", *minibatch, "Minibatch size")->check(CLI::Range(1, 1 << 24));
  ppo->add_option("--obs-dim", *obs_dim, "Observation size")->check(CLI::Range(1, 1 << 20));
  ppo->add_option("--actions", *n_actions, "Number of actions")->check(CLI::Range(1, 1 << 16));
  ppo->add_option("--threads", *threads, "Compute threads (LibTorch and OpenBLAS)")->check(CLI::Range(1, 256));
  ppo->add_option("--repeats", *repeats, "Timed updates (best is reported)")->check(CLI::Range(1, 1000));
  ppo->callback([=] {
    if (*minibatch > *batch) fail("bench ppo: --minibatch ", *minibatch, " exceeds --batch ", *batch);
    std::printf("ppo update: MLP 64x64, obs %d, actions %d, batch %d, epochs %d, minibatch %d, threads %d\n",
                *obs_dim, *n_actions, *batch, *epochs, *minibatch, *threads);
    const double sps = bench_ppo_update(*batch, *epochs, *minibatch, *obs_dim, *n_actions, *threads, *repeats);
    std::printf("ppo_samples_per_s: %.0f\n", sps);
  });
}

}  // namespace conductor::bench
