// Subcommand registry for the `conductor` binary.
//
// Each cli/cmd_*.cpp file defines a setup function that adds its subcommand(s) to the CLI11 app and
// registers it with CONDUCTOR_COMMAND(fn). The cmd files are compiled into the executable itself
// (not a static library), so the registrations are never dropped by the linker.
// Subcommand callbacks throw conductor::Error for user errors; main() prints "error: ..." and exits 1.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <vector>

namespace conductor::cli {

using CommandSetup = void (*)(CLI::App& app);
// Order of setup = order of registration across files (unspecified); help lists them sorted.
int register_command(CommandSetup setup);
const std::vector<CommandSetup>& registered_commands();

// Returns the subcommand `name` of `parent`, adding it first if no file has yet: several cmd files
// can add leaves under one group ("traces import" and "traces synth" live in different files).
inline CLI::App* group(CLI::App& parent, const std::string& name, const std::string& description) {
  for (auto* sub : parent.get_subcommands([](CLI::App*) { return true; }))
    if (sub->get_name() == name) return sub;
  auto* g = parent.add_subcommand(name, description);
  g->require_subcommand(1);
  return g;
}

}  // namespace conductor::cli

#define CONDUCTOR_COMMAND(fn) \
  static const int conductor_command_registered_##fn = ::conductor::cli::register_command(&fn)
