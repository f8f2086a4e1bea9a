// The `conductor bench ...` subcommands: one bench/cmd_bench_*.cpp file per benchmark (or family),
// each adding its subcommand(s) to the CLI's `bench` group. The CLI (cli/cmd_bench.cpp) creates the
// group and calls add_bench_commands; a new benchmark is its file plus one line there.
// Subcommand callbacks throw conductor::Error for user errors, as every command does (cli/command.h).
#pragma once

#include <CLI/CLI.hpp>

namespace conductor::bench {

// Adds every benchmark below to `bench`, in this order (the order `conductor bench --help` lists).
void add_bench_commands(CLI::App& bench);

void add_bench_encoder(CLI::App& bench);    // cmd_bench_encoder.cpp: sentence-encoder throughput
void add_bench_model(CLI::App& bench);      // cmd_bench_model.cpp: Qwen2 forward/decode/LoRA step
void add_bench_serve(CLI::App& bench);      // cmd_bench_serve.cpp: POST /v1/route on loopback
void add_bench_gateway(CLI::App& bench);    //   the gateway against delaying replay providers
void add_bench_stream(CLI::App& bench);     //   streaming through the gateway
void add_bench_traffic(CLI::App& bench);    //   open-loop traffic against a running server
void add_bench_tokenizer(CLI::App& bench);  // cmd_bench_tokenizer.cpp: BPE encode throughput
void add_bench_ppo(CLI::App& bench);        // cmd_bench_ppo.cpp: PPO update throughput
void add_bench_env(CLI::App& bench);        // cmd_bench_env.cpp: routing-environment steps/s

}  // namespace conductor::bench
