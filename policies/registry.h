// Policy kinds by name: `policy.kind` in a run config, "kind" in a checkpoint's policy.json and in an
// export manifest. Everything outside policies/ reaches a policy through this registry and the two
// interfaces (Policy for inference, PolicyModel for training), never through a concrete kind.
//
// A kind provides, once, in one registration (built-in kinds are listed in registry.cpp):
//   parse          reads the kind's own keys of the `policy` mapping (the caller has read `kind`) and
//                  calls r.finish(); returns the kind's typed settings.
//   make_model     builds the training model for an environment (its observation and action space).
//   load_checkpoint  the inference Policy of a checkpoint folder this kind's save() wrote.
//   export_policy  the files of a deployable export (model.safetensors first) and the kind's config
//                  for the manifest, from a checkpoint folder.
//   load_export    the inference Policy of an export directory whose files were verified already.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/json_util.h"
#include "envs/env.h"
#include "policies/policy.h"

namespace conductor {

class PolicyModel;  // policies/policy_model.h (LibTorch)

// A kind's own settings (the keys of the `policy` mapping besides `kind`).
struct PolicySettings {
  virtual ~PolicySettings() = default;
  virtual json to_json() const = 0;
};

// The `policy` section of a run config.
struct PolicyConfig {
  std::string kind = "mlp";
  std::shared_ptr<const PolicySettings> settings;
  // Reads `kind` (one of the registered kinds) and the kind's own keys.
  static PolicyConfig parse(ConfigReader r);
};

// One file of an export directory: its bytes, or (large weights) a file already written elsewhere,
// which the export moves into place.
struct ExportFile {
  std::string name;   // plain file name, e.g. "model.safetensors"
  std::string bytes;
  std::string path;   // when non-empty: the file's content (bytes is ignored)
};

struct ExportedPolicy {
  json config;                    // written as manifest.policy.config
  std::vector<ExportFile> files;  // files[0] is model.safetensors
};

struct PolicyKind {
  std::string kind;
  std::function<std::shared_ptr<const PolicySettings>(ConfigReader& r)> parse;
  std::function<std::unique_ptr<PolicyModel>(const PolicySettings& settings, const EnvSpec& env)> make_model;
  std::function<std::unique_ptr<Policy>(const std::string& checkpoint_dir)> load_checkpoint;
  std::function<ExportedPolicy(const std::string& checkpoint_dir)> export_policy;
  std::function<std::unique_ptr<Policy>(const std::string& export_dir, const json& manifest_policy_config)> load_export;
};

// Registers a kind (a later registration of the same name replaces the earlier one: tests).
void register_policy_kind(PolicyKind kind);
// Throws conductor::Error naming `where` (a file, a key) and listing the registered kinds.
const PolicyKind& policy_kind(const std::string& kind, const std::string& where);
std::vector<std::string> policy_kinds();

// The training model of `config` for an environment with `env`'s spaces. Seed torch's global
// generator first (torch::manual_seed) for reproducible initial weights.
std::unique_ptr<PolicyModel> make_policy_model(const PolicyConfig& config, const EnvSpec& env);

// Resolves a run folder (its newest complete checkpoint) or a checkpoint folder to the checkpoint
// folder. Throws conductor::Error naming the path when neither.
std::string resolve_checkpoint_dir(const std::string& run_or_checkpoint_dir);
// The "kind" of a checkpoint folder's policy.json.
std::string checkpoint_policy_kind(const std::string& checkpoint_dir);
// The inference policy of a run folder or checkpoint folder, whatever its kind.
std::unique_ptr<Policy> load_policy(const std::string& run_or_checkpoint_dir);

}  // namespace conductor
