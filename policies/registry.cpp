#include "policies/registry.h"

#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/registry.h"
#include "policies/mlp.h"
#include "policies/transformer.h"
#include "policies/policy_model.h"

namespace conductor {

namespace {

Registry<PolicyKind>& kinds() {
  static Registry<PolicyKind> r([](Registry<PolicyKind>& reg) {
    // Built-in kinds: one line each.
    reg.add("mlp", mlp_policy_kind());
    reg.add("transformer", transformer_policy_kind());
  });
  return r;
}

}  // namespace

void register_policy_kind(PolicyKind kind) {
  CONDUCTOR_CHECK(!kind.kind.empty() && kind.parse && kind.make_model && kind.load_checkpoint && kind.export_policy &&
                      kind.load_export,
                  "policy kind '", kind.kind, "' registered without every function");
  const std::string name = kind.kind;
  kinds().add(name, std::move(kind));
}

const PolicyKind& policy_kind(const std::string& kind, const std::string& where) {
  const PolicyKind* k = kinds().find(kind);
  if (!k) fail(where, ": unknown policy kind '", kind, "' (known: ", kinds().known(), ")");
  return *k;
}

std::vector<std::string> policy_kinds() { return kinds().ids(); }

PolicyConfig PolicyConfig::parse(ConfigReader r) {
  PolicyConfig c;
  c.kind = r.get_choice("kind", c.kind, policy_kinds());
  c.settings = policy_kind(c.kind, r.where("kind")).parse(r);
  return c;
}

std::unique_ptr<PolicyModel> make_policy_model(const PolicyConfig& config, const EnvSpec& env) {
  CONDUCTOR_CHECK(config.settings, "policy config of kind '", config.kind, "' without settings");
  return policy_kind(config.kind, "policy.kind").make_model(*config.settings, env);
}

std::string resolve_checkpoint_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  if (fs::exists(fs::path(dir) / "policy.json")) return dir;
  const fs::path latest = fs::path(dir) / "checkpoints" / "latest";
  if (fs::exists(latest)) {
    std::string name = read_file(latest.string());
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    const fs::path ck = fs::path(dir) / "checkpoints" / name;
    if (!fs::exists(ck / "policy.json"))
      fail(latest.string(), ": points at '", name, "', which is not a complete checkpoint");
    return ck.string();
  }
  fail(dir, ": neither a checkpoint folder (no policy.json) nor a run folder (no checkpoints/latest)");
}

std::string checkpoint_policy_kind(const std::string& checkpoint_dir) {
  const std::string path = checkpoint_dir + "/policy.json";
  const json j = parse_json(read_file(path), path);
  if (!j.is_object() || !j.contains("kind") || !j["kind"].is_string())
    fail(path, ": missing string field 'kind' (the policy kind)");
  return j["kind"].get<std::string>();
}

std::unique_ptr<Policy> load_policy(const std::string& run_or_checkpoint_dir) {
  const std::string ck = resolve_checkpoint_dir(run_or_checkpoint_dir);
  return policy_kind(checkpoint_policy_kind(ck), ck + "/policy.json").load_checkpoint(ck);
}

}  // namespace conductor
