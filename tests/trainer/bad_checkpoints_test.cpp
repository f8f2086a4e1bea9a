// Bad-input table of the checkpoint surface (issue 27): damaged or foreign run folders and
// checkpoints that `conductor train --resume` (run.json, config.yaml, checkpoints/*/state.json,
// optimizer.pt, weights) and `conductor eval` / `export` (load_policy: checkpoints/latest,
// policy.json, weights) must refuse, each with a substring of the error naming the file and what is
// wrong. The run has a single checkpoint, so no row is rescued by the fallback to the previous one
// (train_test.cpp tests that). A new checkpoint file or field gets a row here (docs/bad-inputs.md).
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/json_util.h"
#include "policies/registry.h"
#include "tests/test_util.h"
#include "tests/trainer/train_fixtures.h"
#include "trainer/train.h"

namespace conductor {
namespace {

namespace fs = std::filesystem;

const char* kRun = R"(
seed: 5
env: {id: cartpole, num_envs: 4}
policy: {hidden: [16, 16]}
ppo: {num_steps: 32, num_minibatches: 2, update_epochs: 1}
total_steps: 1280
checkpoint_every: 1
log: {console: false, tensorboard: false}
final_eval: {enabled: false}
)";

const char* kCk = "/checkpoints/update_00000001";

enum class Use { kResume, kLoadPolicy };

struct Row {
  const char* name;
  Use use;
  std::function<void(const std::string& run)> damage;
  std::string needle;  // "<run>" in it stands for the run folder
};

void edit_json(const std::string& path, const std::function<void(json&)>& f) {
  json j = json::parse(read_file(path));
  f(j);
  write_file_atomic(path, j.dump(1));
}
auto state(std::function<void(json&)> f) {
  return [f](const std::string& run) { edit_json(run + kCk + "/state.json", f); };
}
auto run_json(std::function<void(json&)> f) {
  return [f](const std::string& run) { edit_json(run + "/run.json", f); };
}
auto policy_json(std::function<void(json&)> f) {
  return [f](const std::string& run) { edit_json(run + kCk + "/policy.json", f); };
}
auto write(const std::string& rel, const std::string& contents) {
  return [rel, contents](const std::string& run) { write_file_atomic(run + rel, contents); };
}
auto remove(const std::string& rel) {
  return [rel](const std::string& run) { fs::remove_all(run + rel); };
}
auto truncate(const std::string& rel) {
  return [rel](const std::string& run) { fs::resize_file(run + rel, fs::file_size(run + rel) / 2); };
}

std::string weights_file(const std::string& run) {
  for (const auto& e : fs::directory_iterator(run + kCk)) {
    const std::string n = e.path().filename().string();
    if (n != "policy.json" && n != "optimizer.pt" && n != "state.json" && n.rfind("env_state", 0) != 0) return n;
  }
  return "";
}

const std::vector<Row>& rows() {
  const std::string ck = kCk;
  static const std::vector<Row> r = {
      // The run folder.
      {"no run.json", Use::kResume, remove("/run.json"), "<run>: not a conductor run folder (no run.json); nothing to resume"},
      {"run.json not JSON", Use::kResume, write("/run.json", "{\"format\": "), "<run>/run.json: invalid JSON at byte"},
      {"run.json of another version", Use::kResume, run_json([](json& j) { j["version"] = 7; }),
       "<run>/run.json: run format version 7 written by conductor"},
      {"run.json of another format", Use::kResume, run_json([](json& j) { j["format"] = "sb3"; }),
       "<run>/run.json: run format version 1"},
      {"run.json of another config", Use::kResume, run_json([](json& j) { j["config_fingerprint"] = "0000"; }),
       "<run>: cannot resume: this run was started from a different config"},
      {"run.json number out of range", Use::kResume, write("/run.json", "{\"version\": 1e999}"),
       "<run>/run.json: 'version': number 1e999 is out of range"},
      // checkpoints/.
      {"no checkpoints", Use::kResume, remove("/checkpoints"),
       "<run>: no checkpoint to resume from (no checkpoints/latest and no complete checkpoints/update_*)"},
      {"latest names a missing checkpoint", Use::kResume,
       [ck](const std::string& run) {
         fs::rename(run + ck, run + "/checkpoints/elsewhere");
         write_file_atomic(run + "/checkpoints/latest", "update_00000009\n");
       },
       "<run>: cannot resume: no checkpoint can be loaded (cannot open '<run>/checkpoints/update_00000009/state.json'"},
      {"state.json missing", Use::kResume, remove(ck + "/state.json"),
       "<run>: cannot resume: no checkpoint can be loaded (cannot open '<run>" + ck + "/state.json'"},
      {"state.json not JSON", Use::kResume, write(ck + "/state.json", "{\"format\""),
       "<run>" + ck + "/state.json: invalid JSON at byte"},
      {"state.json number out of range", Use::kResume, write(ck + "/state.json", "{\"update\": -1e999}"),
       "<run>" + ck + "/state.json: 'update': number -1e999 is out of range"},
      {"state.json of another format", Use::kResume, state([](json& j) { j["format"] = "sb3-zip"; }),
       "<run>" + ck + "/state.json: not a conductor checkpoint"},
      {"state.json of another version", Use::kResume, state([](json& j) { j["version"] = 2; }),
       "<run>" + ck + "/state.json: checkpoint format version 2"},
      {"state.json of another config", Use::kResume, state([](json& j) { j["config_fingerprint"] = "abc"; }),
       "<run>" + ck + "/state.json: checkpoint was written by a different config (fingerprint abc"},
      {"state.json of 2 processes", Use::kResume, state([](json& j) { j["world_size"] = 2; }),
       "<run>" + ck + "/state.json: this checkpoint was written by a run of 2 processes; this run has 1"},
      {"state.json without update", Use::kResume, state([](json& j) { j.erase("update"); }),
       "<run>" + ck + "/state.json: invalid checkpoint state: "},
      {"state.json global_step a string", Use::kResume, state([](json& j) { j["global_step"] = "128"; }),
       "<run>" + ck + "/state.json: invalid checkpoint state: "},
      {"state.json without trainer rng", Use::kResume, state([](json& j) { j.erase("trainer_rng"); }),
       "<run>" + ck + "/state.json: invalid checkpoint state: "},
      {"optimizer.pt missing", Use::kResume, remove(ck + "/optimizer.pt"),
       "<run>" + ck + "/optimizer.pt: cannot load the optimizer state"},
      {"optimizer.pt truncated", Use::kResume, truncate(ck + "/optimizer.pt"),
       "<run>" + ck + "/optimizer.pt: cannot load the optimizer state"},
      {"optimizer.pt garbage", Use::kResume, write(ck + "/optimizer.pt", "not a torch archive"),
       "<run>" + ck + "/optimizer.pt: cannot load the optimizer state"},
      {"weights truncated (resume)", Use::kResume,
       [ck](const std::string& run) { truncate(ck + "/" + weights_file(run))(run); }, "<run>" + ck + "/"},
      {"config.yaml missing", Use::kResume, remove("/config.yaml"), "<run>: not a conductor run folder (no config.yaml)"},
      // Loading the policy (eval, export).
      {"not a run or checkpoint", Use::kLoadPolicy, remove("/checkpoints"),
       "<run>: neither a checkpoint folder (no policy.json) nor a run folder (no checkpoints/latest)"},
      {"latest names a missing checkpoint (load)", Use::kLoadPolicy, write("/checkpoints/latest", "update_00000042\n"),
       "<run>/checkpoints/latest: points at 'update_00000042', which is not a complete checkpoint"},
      {"policy.json not JSON", Use::kLoadPolicy, write(ck + "/policy.json", "[1,"),
       "<run>" + ck + "/policy.json: invalid JSON at byte"},
      {"policy.json without kind", Use::kLoadPolicy, policy_json([](json& j) { j.erase("kind"); }),
       "<run>" + ck + "/policy.json: missing string field 'kind' (the policy kind)"},
      {"policy.json of an unknown kind", Use::kLoadPolicy, policy_json([](json& j) { j["kind"] = "forest"; }),
       "unknown policy kind 'forest' (known: "},
      {"policy.json with obs_dim 0", Use::kLoadPolicy, policy_json([](json& j) { j["obs_dim"] = 0; }),
       "field 'obs_dim' must be positive, got 0"},
      {"weights missing (load)", Use::kLoadPolicy,
       [ck](const std::string& run) { fs::remove(run + ck + "/" + weights_file(run)); }, "<run>" + ck + "/"},
  };
  return r;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}

TEST(BadCheckpoints, EveryDamagedRunOrCheckpointIsRefusedNamingTheFile) {
  const std::string root = testing::temp_dir();
  const std::string good = root + "/good";
  testing::train_quietly(ConfigDoc::load_string(kRun, "run.yaml"), good, /*stop_after=*/1);
  ASSERT_TRUE(fs::exists(good + kCk + "/state.json"));
  ASSERT_FALSE(weights_file(good).empty());
  for (const Row& row : rows()) {
    const std::string run = root + "/bad";
    fs::remove_all(run);
    fs::copy(good, run, fs::copy_options::recursive);
    row.damage(run);
    std::string e = "<no error>";
    try {
      if (row.use == Use::kResume)
        testing::train_quietly(load_run_config(run, {}), run, /*stop_after=*/1, /*resume=*/true);
      else
        load_policy(run);
    } catch (const Error& err) {
      e = err.what();
    }
    const std::string needle = replace_all(row.needle, "<run>", run);
    EXPECT_NE(e.find(needle), std::string::npos) << row.name << "\n  expected: " << needle << "\n  got:      " << e;
  }
  EXPECT_EQ(rows().size(), 30u);  // docs/bad-inputs.md
}

}  // namespace
}  // namespace conductor
