// `conductor config check FILE.yaml [--set k=v]...`: validates a config without running it.
#include <iostream>

#include "cli/command.h"
#include "trainer/run_config.h"
#include "core/config.h"

namespace conductor::cli {
namespace {
void setup_config(CLI::App& app) {
  auto* config = app.add_subcommand("config", "Inspect and validate YAML configs");
  config->require_subcommand(1);
  auto* check = config->add_subcommand("check", "Validate a config file without running anything");
  auto file = std::make_shared<std::string>();
  auto sets = std::make_shared<std::vector<std::string>>();
  auto print = std::make_shared<bool>(false);
  check->add_option("file", *file, "YAML config")->required();
  check->add_option("--set", *sets, "Override a key: a.b.c=value (repeatable)");
  check->add_flag("--print", *print, "Print the resolved config (defaults filled in)");
  check->callback([=] {
    ConfigDoc doc = ConfigDoc::load_file(*file);
    doc.apply_overrides(*sets);
    check_run_config(doc);
    if (*print) std::cout << doc.resolved_yaml();
    std::cout << *file << ": OK\n";
  });
}
}  // namespace
CONDUCTOR_COMMAND(setup_config);
}  // namespace conductor::cli
