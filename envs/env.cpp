#include "envs/env.h"

#include "envs/env_hooks.h"

namespace conductor {

const std::vector<std::string>& expert_names() {
  static const std::vector<std::string> names = {"best_fixed", "per_task", "router", "cascade"};
  return names;
}

const std::string& expert_name(Expert expert) { return expert_names().at(static_cast<std::size_t>(expert)); }

std::unique_ptr<EnvExportSpec> VectorEnv::export_spec() const {
  auto out = std::make_unique<EnvExportSpec>();
  out->action_names = spec().action_names;
  return out;
}

std::vector<int> workers_of_logged_models(const TraceSet& logs, const std::vector<std::string>& workers) {
  std::vector<int> out(logs.n_models(), -1);
  for (std::size_t m = 0; m < logs.n_models(); ++m)
    for (std::size_t k = 0; k < workers.size(); ++k)
      if (logs.model_name[m] == workers[k]) out[m] = static_cast<int>(k);
  return out;
}

}  // namespace conductor
