// Bad-input table of the export-directory surface (issue 27): damaged or hand-edited exports that
// loading them the way `conductor serve --export DIR` does (verify the manifest and files, build the
// policy through its kind, rebuild the serving world from manifest.world, check that both fit) must
// refuse, each with a substring of the error. Every message names the file and the field. These rows
// add to export_test.cpp's; a new manifest field gets a row here (docs/bad-inputs.md counts them).
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "policies/export.h"
#include "tests/policies/policy_fixtures.h"
#include "serve/export_router.h"
#include "tests/test_util.h"

namespace conductor {
namespace {

namespace fs = std::filesystem;

struct Row {
  const char* name;
  std::function<void(json& manifest, const std::string& dir)> damage;
  std::string needle;  // after "<dir>/manifest.json: "; after "<dir>" when it starts with '/'; as is after '!'
};

// What `conductor serve --export DIR` does before it serves anything.
void load_for_serving(const std::string& dir) { serve::router_for_export(dir); }

const std::vector<Row>& rows() {
  auto set = [](const char* path, json v) {
    return [p = json::json_pointer(path), v](json& m, const std::string&) { m[p] = v; };
  };
  auto erase = [](const char* parent, const char* key) {
    return [p = json::json_pointer(parent), key](json& m, const std::string&) { m[p].erase(key); };
  };
  static const std::vector<Row> r = {
      {"format_version missing", erase("", "format_version"), "missing integer 'format_version'"},
      {"format_version a string", set("/format_version", "1"), "missing integer 'format_version'"},
      {"format_version 0", set("/format_version", 0), "format_version 0 is not supported (this build reads version 1)"},
      {"format missing", erase("", "format"), "'format' is not \"conductor-export\": this is not a Conductor export"},
      {"files missing", erase("", "files"), "missing object 'files'"},
      {"files a list", set("/files", json::array()), "missing object 'files'"},
      {"file entry a string", set("/files/model.safetensors", "abc"),
       "files['model.safetensors'] must be {\"sha256\": hex, \"bytes\": size}"},
      {"file entry without sha256", erase("/files/model.safetensors", "sha256"),
       "files['model.safetensors'] must be {\"sha256\": hex, \"bytes\": size}"},
      {"file size negative", set("/files/model.safetensors/bytes", -1),
       "files['model.safetensors'] must be {\"sha256\": hex, \"bytes\": size}"},
      {"file size wrong", set("/files/model.safetensors/bytes", 12), "/model.safetensors: size "},
      {"file hash wrong", set("/files/model.safetensors/sha256", std::string(64, '0')),
       "/model.safetensors: sha256 "},
      {"file outside the folder", set("/files/..~1x", json{{"sha256", "0"}, {"bytes", 1}}),
       "lists '../x', which is missing from "},
      {"model not listed", [](json& m, const std::string& dir) {
         m["files"]["weights.bin"] = m["files"]["model.safetensors"];
         m["files"].erase("model.safetensors");
         fs::rename(dir + "/model.safetensors", dir + "/weights.bin");
       },
       "files does not list model.safetensors"},
      {"policy missing", erase("", "policy"), "missing 'policy.kind'"},
      {"policy.kind a number", set("/policy/kind", 3), "missing 'policy.kind'"},
      {"policy.kind unknown", set("/policy/kind", "forest"), "policy.kind: unknown policy kind 'forest' (known: "},
      {"policy.config.obs_dim 0", set("/policy/config/obs_dim", 0), "policy.config: field 'obs_dim' must be positive, got 0"},
      {"policy.config.n_actions -1", set("/policy/config/n_actions", -1), "policy.config: field 'n_actions' must be positive, got -1"},
      {"policy.config.hidden width 0", set("/policy/config/hidden", json::array({16, 0})),
       "policy.config: field 'hidden' has a non-positive width 0"},
      {"policy.config.activation gelu", set("/policy/config/activation", "gelu"),
       "policy.config: field 'activation' is 'gelu', expected tanh or relu"},
      {"policy.config.obs_dim missing", erase("/policy/config", "obs_dim"), "policy.config: missing field 'obs_dim'"},
      {"policy.config.hidden a string", set("/policy/config/hidden", "16,16"), "policy.config: invalid policy spec: "},
      {"world missing", erase("", "world"), "/manifest.json: missing field 'world' (the workers and features a conductor routes with; env_id is 'conductor')"},
      {"world without featurizer", erase("/world", "featurizer"), "/manifest.json: world: missing field 'featurizer'"},
      {"world.workers empty", set("/world/workers", json::array()), "/manifest.json: world.workers: expected a non-empty array"},
      {"worker name a number", set("/world/workers/0/name", 5), "/manifest.json: world.workers[0].name: expected a string"},
      {"worker price negative", set("/world/workers/1/price_in_per_mtok", -2),
       "/manifest.json: world.workers[1].price_in_per_mtok: expected null (unknown) or a number >= 0, got -2"},
      {"worker trust missing", erase("/world/workers/0", "trust"), "/manifest.json: world.workers[0]: missing field 'trust'"},
      {"cost_scale 0", set("/world/cost_scale", 0), "/manifest.json: world.cost_scale and latency_scale must be > 0"},
      {"max_steps 0", set("/world/max_steps", 0), "/manifest.json: world.max_steps: expected an integer >= 1"},
      {"budget cap negative", set("/world/budget_cap_usd", -1), "/manifest.json: world.budget_cap_usd: expected null or a number >= 0"},
      {"cost conditioning reversed", set("/world/cost_conditioning", json{{"w_cost_min", 10}, {"w_cost_max", 3}, {"w_cost_default", 5}}),
       "/manifest.json: world.cost_conditioning: expected 0 < w_cost_min < w_cost_max and w_cost_default in between"},
      {"observe_price_changes a string", set("/world/observe_price_changes", "yes"),
       "/manifest.json: world.observe_price_changes: expected true or false, got \"yes\""},
      {"predictions of another featurizer", set("/world/predictions", json{{"dim", 1}, {"workers", json::array()}}),
       "/manifest.json: world.predictions.dim: expected "},
      {"finish rule unknown", set("/world/finish_rules", json::array({"best"})),
       "/manifest.json: world.finish_rules: unknown finish rule \"best\" (expected last, vote, most_trusted)"},
      {"default finish not listed", set("/world/finish_rules", json::array({"vote"})),
       "/manifest.json: world.default_finish: expected one of world.finish_rules"},
      {"featurizer kind unknown", set("/world/featurizer/kind", "bert"), "/manifest.json: world.featurizer: "},
      {"a worker fewer than the policy's actions", [](json& m, const std::string&) { m["world"]["workers"].erase(0); },
       "!the export's policy"},
  };
  return r;
}

TEST(BadExportDirs, EveryDamagedExportIsRefusedNamingFileAndField) {
  const std::string root = ::conductor::testing::temp_dir();
  const auto t = ::conductor::testing::make_test_world(100, 2);
  ExportContents c;
  const MlpSpec spec = ::conductor::testing::mlp_spec_for(*t.live, {16, 16});
  c.policy = mlp_exported_policy(spec, ::conductor::testing::random_mlp_tensors(spec, 4));
  c.world = t.spec;
  c.env_id = "conductor";
  for (const auto& a : t.live->actions()) c.action_names.push_back(a.name);
  c.reward = {{"w_quality", 1.0}};
  c.training = {{"run_dir", "test"}};
  const std::string dir = root + "/e";
  write_export(dir, c);
  ASSERT_NO_THROW(load_for_serving(dir));
  for (const Row& row : rows()) {
    fs::remove_all(dir);
    write_export(dir, c);
    json m = json::parse(read_file(dir + "/manifest.json"));
    row.damage(m, dir);
    write_file_atomic(dir + "/manifest.json", m.dump(1));
    std::string e = "<no error>";
    try {
      load_for_serving(dir);
    } catch (const Error& err) {
      e = err.what();
    }
    const std::string needle = row.needle[0] == '!'   ? row.needle.substr(1)
                               : row.needle[0] == '/' ? dir + row.needle
                                                      : dir + "/manifest.json: " + row.needle;
    EXPECT_NE(e.find(needle), std::string::npos) << row.name << "\n  expected: " << needle << "\n  got:      " << e;
  }
  EXPECT_EQ(rows().size(), 38u);  // docs/bad-inputs.md
}

}  // namespace
}  // namespace conductor
