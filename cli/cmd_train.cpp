// `conductor train CONFIG.yaml [--out RUN_DIR] [--resume RUN_DIR] [--set k=v]...` (the PPO update's
// throughput is `conductor bench ppo`, bench/cmd_bench_ppo.cpp).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "cli/command.h"
#include "core/config.h"
#include "core/error.h"
#include "trainer/distributed.h"
#include "trainer/train.h"

namespace conductor::cli {
namespace {

void setup_train(CLI::App& app) {
  auto* train = app.add_subcommand("train", "Train a conductor policy (PPO / GRPO) from a YAML run config");
  auto config = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto resume = std::make_shared<std::string>();
  auto sets = std::make_shared<std::vector<std::string>>();
  auto quiet = std::make_shared<bool>(false);
  auto threads = std::make_shared<int>(0);
  auto dist = std::make_shared<DistributedFlags>();
  auto per_env_sampling = std::make_shared<bool>(false);
  train->add_option("config", *config, "Run config (YAML); optional with --resume (the run's own config.yaml)");
  train->add_option("--out", *out, "Run folder to create (default: runs/<config name>)");
  train->add_option("--resume", *resume, "Continue the run in this folder from its newest checkpoint");
  train->add_option("--set", *sets, "Override a key: a.b.c=value (repeatable)");
  train->add_flag("--quiet", *quiet, "No progress line");
  train->add_option("--threads", *threads,
                    "Compute threads (LibTorch and OpenBLAS together); the same as --set threads=N")
      ->check(CLI::Range(1, 1024));
  train->add_option("--world-size", dist->world_size,
                    "Data-parallel processes (default: WORLD_SIZE or SLURM_NTASKS, else 1); docs/distributed.md")
      ->check(CLI::Range(1, 65536));
  train->add_option("--rank", dist->rank, "This process's rank, 0..world-size-1 (default: RANK or SLURM_PROCID)")
      ->check(CLI::Range(0, 65535));
  train->add_option("--master", dist->master, "Rank 0's HOST:PORT (default: MASTER_ADDR:MASTER_PORT)");
  train->add_option("--dist-timeout", dist->timeout_s,
                    "Seconds a collective or the rendezvous may wait for the other ranks before the run fails "
                    "naming the missing rank (default: CONDUCTOR_DIST_TIMEOUT, else 120)")
      ->check(CLI::PositiveNumber);
  train->add_option("--dist-backend", dist->backend, "gloo (CPU; default) or nccl (CUDA builds only)");
  train->add_flag("--per-env-sampling", *per_env_sampling,
                  "One action-sampling stream per sub-environment (what data-parallel ranks always use), so a "
                  "single process reproduces a data-parallel run's episodes");
  train->callback([=] {
    TrainOptions opt;
    opt.console = !*quiet;
    opt.per_env_sampling = *per_env_sampling;
    const DistributedOptions dopt = resolve_distributed_options(*dist, [](const char* n) { return std::getenv(n); });
    if (*threads > 0) sets->push_back("threads=" + std::to_string(*threads));
    ConfigDoc doc = ConfigDoc::empty();
    if (!resume->empty()) {
      if (!out->empty() && *out != *resume) fail("train: --out and --resume name different folders");
      opt.resume = true;
      opt.run_dir = *resume;
      if (config->empty()) {
        doc = load_run_config(*resume, *sets);
      } else {
        doc = ConfigDoc::load_file(*config);
        doc.apply_overrides(*sets);
      }
    } else {
      if (config->empty()) fail("train: a config file is required (or --resume RUN_DIR)");
      doc = ConfigDoc::load_file(*config);
      doc.apply_overrides(*sets);
      opt.run_dir = out->empty() ? "runs/" + std::filesystem::path(*config).stem().string() : *out;
    }
    if (dopt.world_size > 1) opt.group = make_process_group(dopt);
    const TrainResult r = run_training(doc, opt);
    if (dopt.rank != 0) return;  // rank 0 reports for the group
    std::printf("%s after %ld updates, %ld steps, %.1f s (%.0f steps/s)\n",
                r.interrupted ? "interrupted" : "finished", long(r.updates), long(r.global_step), r.wall_seconds,
                r.wall_seconds > 0 ? r.global_step / r.wall_seconds : 0.0);
    const double ret = r.last.get("charts/return_ma100");
    if (std::isfinite(ret)) std::printf("mean return (last 100 episodes): %.4f\n", ret);
    std::printf("checkpoint: %s\n", r.checkpoint_dir.c_str());
    if (!r.final_eval.values.empty()) {
      auto show = [&](const char* label, const std::string& prefix) {
        const double n = r.final_eval.get(prefix + "episodes");
        if (!std::isfinite(n)) return;
        std::printf("final eval, %-22s episodes %.0f | return %.4f", label, n, r.final_eval.get(prefix + "episodic_return"));
        for (const char* k : {"quality", "cost_usd", "latency_s", "optimal"}) {
          const double v = r.final_eval.get(prefix + k);
          if (std::isfinite(v)) std::printf(" | %s %.5g", k, v);
        }
        std::printf("\n");
      };
      show("policy (greedy):", "eval/");
      show("best fixed strategy:", "eval/expert_");
    }
    if (r.interrupted && dopt.world_size > 1)
      std::printf("resume with %d ranks: scripts/launch-local %d --resume %s (or the same launcher command)\n",
                  dopt.world_size, dopt.world_size, r.run_dir.c_str());
    else if (r.interrupted)
      std::printf("resume with: conductor train --resume %s\n", r.run_dir.c_str());
  });
}

}  // namespace
CONDUCTOR_COMMAND(setup_train);
}  // namespace conductor::cli
