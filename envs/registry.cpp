#include "envs/registry.h"

#include "core/registry.h"

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
Registry<EnvFactory>& envs() {
  static Registry<EnvFactory> r([](Registry<EnvFactory>&) {
    builtin_envs::register_cartpole();
    builtin_envs::register_bandit();
    builtin_envs::register_conductor();
  });
  return r;
}
}  // namespace

void register_env(const std::string& id, EnvFactory factory) { envs().add(id, std::move(factory)); }

std::vector<std::string> env_ids() { return envs().ids(); }

std::unique_ptr<VectorEnv> make_env(const std::string& id, ConfigReader& cfg, int num_envs) {
  const EnvFactory* factory = envs().find(id);
  if (!factory) {
    const std::string known = envs().known();
    cfg.fail_at("id", "unknown environment '" + id + "'; known: " + (known.empty() ? "(none)" : known));
  }
  return (*factory)(cfg, num_envs);
}

}  // namespace conductor
