// Export directories: the deployable artifact of a trained policy (DESIGN.md section 9), for every
// policy kind (the kind's registry entry supplies its files, policies/registry.h).
//
//   EXPORT_DIR/
//     manifest.json       format "conductor-export", format_version, model_version, policy kind and
//                         config, action space (worker list and action names), world spec
//                         (world/conductor_state.h: featurizer, worker prices, observation
//                         normalizations, what serving needs to build observations), reward
//                         weights, training metrics, and {"files": {name: {"sha256", "bytes"}}}
//     model.safetensors   the policy weights (the MLP: its actor, torch names, F32)
//     ...                 further files of the kind
//
// Written atomically and verified on load (artifacts/artifact_dir.h): a reader never sees a
// half-written export, and anything that does not match its manifest is refused with a message that
// names the file and what was expected.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/json_util.h"
#include "policies/policy.h"
#include "policies/registry.h"

namespace conductor {

constexpr const char* kExportFormatName = "conductor-export";
constexpr int kExportFormatVersion = 1;

struct ExportContents {
  std::string policy_kind = "mlp";
  ExportedPolicy policy;            // the kind's config and files (model.safetensors first)
  json world;                       // ConductorWorldSpec::to_json(), or null (not servable: not a conductor env)
  std::string env_id;               // "conductor", "cartpole", ...
  std::vector<std::string> action_names;
  json reward;                      // reward weights (null when the env has none)
  json training;                    // run folder, checkpoint, last metrics
};

// Writes `dir` atomically (and loads it back before it replaces anything). Refuses an existing `dir`
// unless `overwrite` and it is an export dir.
void write_export(const std::string& dir, const ExportContents& contents, bool overwrite = false);

// Builds the export of a run folder or checkpoint folder: the newest checkpoint's policy (through
// its kind), the run's config.yaml (its env section rebuilds the world spec, so the trace file it
// names must be readable), and the last line of metrics.jsonl.
ExportContents export_from_run(const std::string& run_or_checkpoint_dir);

struct LoadedExport {
  std::string dir;
  json manifest;
  std::string model_version;
  std::shared_ptr<const Policy> policy;
};

// True when `dir` holds a manifest.json naming the export format (the contents are not verified).
bool is_export_dir(const std::string& dir);
// Verifies and loads. Throws conductor::Error naming the file at fault.
LoadedExport load_export_bundle(const std::string& dir);
// The policy of an export directory (what `eval` uses).
std::unique_ptr<Policy> load_export(const std::string& dir);
// A run folder, a checkpoint folder or an export directory: the policy in it.
std::unique_ptr<Policy> load_any_policy(const std::string& dir);

}  // namespace conductor
