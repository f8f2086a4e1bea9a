#include "policies/export.h"

#include <ctime>
#include <filesystem>
#include <fstream>

#include "artifacts/artifact_dir.h"
#include "artifacts/sha256.h"
#include "core/atomic_file.h"
#include "core/config.h"
#include "core/error.h"
#include "core/version.h"
#include "envs/env_hooks.h"
#include "envs/registry.h"

namespace conductor {

namespace fs = std::filesystem;

namespace {

constexpr const char* kModel = "model.safetensors";
constexpr const char* kHint = "create one with `conductor export --checkpoint RUN_DIR --out DIR`";

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Verifies `dir` and builds its policy through the kind named in the manifest.
std::unique_ptr<Policy> verify_and_load(const std::string& dir, json* manifest_out) {
  json m = verify_artifact_dir(dir, kExportFormatName, kExportFormatVersion, kHint);
  const std::string mpath = (fs::path(dir) / "manifest.json").string();
  if (!m["files"].contains(kModel)) fail(mpath, ": files does not list ", kModel);
  const json& policy = m.contains("policy") ? m["policy"] : json();
  if (!policy.is_object() || !policy.contains("kind") || !policy["kind"].is_string())
    fail(mpath, ": missing 'policy.kind'");
  const std::string kind = policy["kind"].get<std::string>();
  auto p = policy_kind(kind, mpath + ": policy.kind").load_export(dir, policy.value("config", json()));
  if (manifest_out) *manifest_out = std::move(m);
  return p;
}

}  // namespace

bool is_export_dir(const std::string& dir) { return is_artifact_dir(dir, kExportFormatName); }

void write_export(const std::string& dir, const ExportContents& c, bool overwrite) {
  if (c.policy.files.empty() || c.policy.files[0].name != kModel)
    fail("export: policy kind '", c.policy_kind, "' gave no ", kModel, " as its first file");
  std::vector<ArtifactFile> files;
  for (const auto& f : c.policy.files) files.push_back({f.name, f.bytes, f.path});
  json workers = json::array();
  if (c.world.is_object())
    for (const auto& w : c.world["workers"]) workers.push_back(w["name"]);
  json manifest = {
      {"format", kExportFormatName},
      {"format_version", kExportFormatVersion},
      {"created_utc", utc_now()},
      {"conductor_version", kConductorVersion},
      {"policy", {{"kind", c.policy_kind}, {"config", c.policy.config}}},
      {"env_id", c.env_id},
      {"action_space", {{"n_actions", c.action_names.size()}, {"actions", c.action_names}, {"workers", workers}}},
      {"world", c.world},
      {"reward", c.reward},
      {"training", c.training}};
  // The model version names the kind and the weights: the first 12 hex digits of their SHA-256.
  manifest["model_version"] =
      c.policy_kind + "-" + (files[0].path.empty() ? sha256_hex(files[0].bytes) : sha256_file(files[0].path)).substr(0, 12);
  // Validate what we wrote before it replaces anything.
  write_artifact_dir(dir, manifest, files, overwrite, [](const std::string& tmp) { verify_and_load(tmp, nullptr); });
}

LoadedExport load_export_bundle(const std::string& dir) {
  LoadedExport e;
  e.dir = dir;
  e.policy = verify_and_load(dir, &e.manifest);
  e.model_version = e.manifest.value("model_version", "");
  return e;
}

std::unique_ptr<Policy> load_export(const std::string& dir) { return verify_and_load(dir, nullptr); }

std::unique_ptr<Policy> load_any_policy(const std::string& dir) {
  if (is_export_dir(dir)) return load_export(dir);
  return load_policy(dir);
}

ExportContents export_from_run(const std::string& run_or_checkpoint_dir) {
  const std::string ck = resolve_checkpoint_dir(run_or_checkpoint_dir);
  fs::path run = fs::path(run_or_checkpoint_dir);
  if (!fs::is_regular_file(run / "config.yaml")) run = fs::path(ck).parent_path().parent_path();
  const fs::path cfg_path = run / "config.yaml";
  if (!fs::is_regular_file(cfg_path))
    fail(run_or_checkpoint_dir, ": cannot find the run's config.yaml (looked in ", run.string(),
         "): export needs it to rebuild the serving world");

  ExportContents c;
  c.policy_kind = checkpoint_policy_kind(ck);
  c.policy = policy_kind(c.policy_kind, ck + "/policy.json").export_policy(ck);
  const auto probe = policy_kind(c.policy_kind, ck + "/policy.json").load_checkpoint(ck);

  ConfigDoc doc = ConfigDoc::load_file(cfg_path.string());
  ConfigReader env = doc.root().child("env");
  c.env_id = env.required<std::string>("id");
  env.get<int>("num_envs", 1);
  // What the env kind records for serving (envs/env_hooks.h): its serving world, checked against
  // the policy, its action names and reward weights.
  const std::unique_ptr<EnvExportSpec> spec = make_env(c.env_id, env, 1)->export_spec();
  if (spec->serving_world)
    check_obs_fits(*probe, run_or_checkpoint_dir + " (its checkpoint's policy)",
                   spec->serving_world->start(spec->probe_query)->observation(),
                   "the serving world rebuilt from its config.yaml (was config.yaml edited after training?)");
  c.action_names = spec->action_names;
  c.world = spec->world;
  c.reward = spec->reward;
  json metrics = nullptr;
  const fs::path mpath = run / "metrics.jsonl";
  if (fs::is_regular_file(mpath)) {
    std::ifstream f(mpath);
    std::string line, last;
    while (std::getline(f, line))
      if (!line.empty()) last = line;
    if (!last.empty()) {
      try {
        metrics = json::parse(last);
      } catch (const json::exception&) {
        fail(mpath.string(), ": the last line is not valid JSON");
      }
    }
  }
  c.training = {{"run_dir", fs::absolute(run).lexically_normal().string()},
                {"checkpoint", fs::path(ck).filename().string()},
                {"last_metrics", metrics}};
  return c;
}

}  // namespace conductor
