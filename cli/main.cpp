#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>

#include "cli/command.h"
#include "core/error.h"

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
  CLI::App app{"conductor: train, evaluate, export and serve an LLM orchestration policy"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "conductor 0.1.0");
  for (auto setup : conductor::cli::registered_commands()) setup(app);
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
