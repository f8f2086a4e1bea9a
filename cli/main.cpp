#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <iostream>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "core/version.h"
#include "policies/compute.h"
#include "trainer/distributed.h"

namespace conductor::cli {
namespace {
std::vector<CommandSetup>& registry() {
  static std::vector<CommandSetup> r;
  return r;
}
}  // namespace
int register_command(CommandSetup setup) {
  registry().push_back(setup);
  return static_cast<int>(registry().size());
}
const std::vector<CommandSetup>& registered_commands() { return registry(); }
}  // namespace conductor::cli

int main(int argc, char** argv) {
  // One compute thread unless a command asks for more (`threads` / --threads): OpenBLAS's own pool
  // would otherwise spin on the other cores.
  conductor::set_compute_threads(1);
  // Keep freed tensor memory for reuse instead of unmapping it (policies/compute.h).
  conductor::tune_allocator();
  CLI::App app{"conductor: train, evaluate, export and serve an LLM orchestration policy"};
  app.require_subcommand(1);
  // Options of the top-level app may also be given after the subcommand.
  app.fallthrough();
  app.add_option_function<std::string>(
         "--log-level", [](const std::string& v) { conductor::set_log_level(conductor::parse_log_level(v)); },
         "Diagnostics on stderr: debug, info, warn, error or off (default info)")
      ->check(CLI::IsMember({"debug", "info", "warn", "warning", "error", "off"}));
  app.set_version_flag("--version", std::string("conductor ") + conductor::kConductorVersion + " (" +
                                        conductor::torch_build_description() +
                                        (conductor::nccl_compiled_in() ? ", NCCL compiled in)" : ")"));
  for (auto setup : conductor::cli::registered_commands()) setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // A mistyped command (at any level: `conductor fly`, `conductor traces fly`): CLI11 only says that
    // a subcommand is required; the word it could not place is the first of remaining(). Name it and
    // the commands of that level (sorted: registration follows link order).
    const CLI::App* level = &app;
    while (!level->get_subcommands().empty()) level = level->get_subcommands().front();
    const auto subs = level->get_subcommands([](const CLI::App*) { return true; });
    if (!subs.empty() && !app.remaining().empty()) {
      std::vector<std::string> sorted;
      for (const auto* sub : subs) sorted.push_back(sub->get_name());
      std::sort(sorted.begin(), sorted.end());
      std::string names;
      for (const auto& n : sorted) names += (names.empty() ? "" : ", ") + n;
      std::cerr << "error: unknown command '" << app.remaining().front() << "'"
                << (level == &app ? std::string() : " of '" + level->get_name() + "'") << ": expected one of "
                << names << " (conductor " << (level == &app ? "" : level->get_name() + " ") << "--help lists them)\n";
      return static_cast<int>(CLI::ExitCodes::ExtrasError);
    }
    return app.exit(e);
  } catch (const conductor::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
