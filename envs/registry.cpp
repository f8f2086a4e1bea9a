#include "envs/registry.h"

#include <map>
#include <mutex>

namespace conductor {

// Each built-in environment's registration function, defined beside the environment.
// (Explicit calls instead of static initializers: static libraries drop unreferenced objects.)
// Add one declaration and one call per environment.
namespace builtin_envs {
void register_cartpole();
void register_bandit();
void register_conductor();
}  // namespace builtin_envs

namespace {
std::map<std::string, EnvFactory>& table() {
  static std::map<std::string, EnvFactory> t;
  return t;
}
void ensure_builtins() {
  static std::once_flag once;
  std::call_once(once, [] {
    builtin_envs::register_cartpole();
    builtin_envs::register_bandit();
    builtin_envs::register_conductor();
  });
}
}  // namespace

void register_env(const std::string& id, EnvFactory factory) { table()[id] = std::move(factory); }

std::vector<std::string> env_ids() {
  ensure_builtins();
  std::vector<std::string> ids;
  for (const auto& kv : table()) ids.push_back(kv.first);
  return ids;
}

std::unique_ptr<VectorEnv> make_env(const std::string& id, ConfigReader& cfg, int num_envs) {
  ensure_builtins();
  auto it = table().find(id);
  if (it == table().end()) {
    std::string known;
    for (const auto& kv : table()) known += (known.empty() ? "" : ", ") + kv.first;
    cfg.fail_at("id", "unknown environment '" + id + "'; known: " + (known.empty() ? "(none)" : known));
  }
  return it->second(cfg, num_envs);
}

}  // namespace conductor
