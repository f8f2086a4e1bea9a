// `conductor bench ...`: the benchmarks of bench/ (bench/commands.h) under the `bench` group.
#include "bench/commands.h"
#include "cli/command.h"

namespace conductor::cli {
namespace {

void setup_bench(CLI::App& app) { bench::add_bench_commands(*group(app, "bench", "Benchmarks")); }

}  // namespace
CONDUCTOR_COMMAND(setup_bench);
}  // namespace conductor::cli
