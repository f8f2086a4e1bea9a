// Environments are created by string id (the `env.id` key of a run config).
//
// A factory reads its own keys from the `env` mapping (the caller has already read `id` and
// `num_envs`), must call cfg.finish() so unknown keys are rejected, and returns a VectorEnv with
// `num_envs` sub-environments. Built-in environments are registered in registry.cpp.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "envs/env.h"

namespace conductor {

using EnvFactory = std::function<std::unique_ptr<VectorEnv>(ConfigReader& cfg, int num_envs)>;

void register_env(const std::string& id, EnvFactory factory);
// Throws conductor::Error at `cfg` naming the unknown id and listing the known ones.
std::unique_ptr<VectorEnv> make_env(const std::string& id, ConfigReader& cfg, int num_envs);
std::vector<std::string> env_ids();

}  // namespace conductor
