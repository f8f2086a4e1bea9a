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
  // A mistyped command names itself and the commands there are (CLI11 would only say that one is
  // required). The first word that is not an option (or --log-level's value) is the command.
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--log-level") {
      ++i;
      continue;
    }
    if (a.empty() || a[0] == '-') continue;
    const auto subs = static_cast<const CLI::App&>(app).get_subcommands([](const CLI::App*) { return true; });
    if (std::any_of(subs.begin(), subs.end(), [&](const CLI::App* sub) { return sub->check_name(a); })) break;
    std::vector<std::string> sorted;  // registration order follows link order: sort for a stable message
    for (const auto* sub : subs) sorted.push_back(sub->get_name());
    std::sort(sorted.begin(), sorted.end());
    std::string names;
    for (const auto& n : sorted) names += (names.empty() ? "" : ", ") + n;
    std::cerr << "error: unknown command '" << a << "': expected one of " << names
              << " (conductor --help lists them)\n";
    return static_cast<int>(CLI::ExitCodes::ExtrasError);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
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
