// Export directories: atomic write, verification on load (hashes, sizes, version, unlisted files).
#include "policies/export.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "artifacts/safetensors.h"
#include "artifacts/sha256.h"
#include "tests/policies/policy_fixtures.h"
#include "tests/test_util.h"

namespace conductor {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;

ExportContents contents_for(const testing::TestWorld& t, uint64_t seed) {
  ExportContents c;
  const MlpSpec spec = testing::mlp_spec_for(*t.live, {16, 16});
  c.policy = mlp_exported_policy(spec, testing::random_mlp_tensors(spec, seed));
  c.world = t.spec;
  c.env_id = "conductor";
  for (const auto& a : t.live->actions()) c.action_names.push_back(a.name);
  c.reward = {{"w_quality", 1.0}};
  c.training = {{"run_dir", "test"}};
  return c;
}

TEST(Export, RoundTripGivesTheSamePolicyAndAVerifiedManifest) {
  const std::string root = testing::temp_dir();
  const std::string dir = root + "/export";
  auto t = testing::make_test_world(100, 2);
  const ExportContents c = contents_for(t, 3);
  write_export(dir, c);
  EXPECT_TRUE(is_export_dir(dir));
  EXPECT_FALSE(is_export_dir(root));
  // Only the two files, no temporary leftovers next to it.
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.is_regular_file();
  EXPECT_EQ(n, 2);
  for (const auto& e : fs::directory_iterator(fs::path(dir).parent_path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();

  LoadedExport e = load_export_bundle(dir);
  const json& m = e.manifest;
  EXPECT_EQ(m["format"], "conductor-export");
  EXPECT_EQ(m["format_version"], 1);
  EXPECT_EQ(m["policy"]["kind"], "mlp");
  EXPECT_EQ(m["action_space"]["workers"].size(), t.live->workers().size());
  EXPECT_EQ(m["world"], t.spec);
  const std::string sha = sha256_file(dir + "/model.safetensors");
  EXPECT_EQ(m["files"]["model.safetensors"]["sha256"], sha);
  EXPECT_EQ(e.model_version, "mlp-" + sha.substr(0, 12));

  // The loaded policy acts exactly like one built from the tensors in memory.
  const MlpSpec spec = testing::mlp_spec_for(*t.live, {16, 16});
  auto direct = make_mlp_policy(spec, testing::random_mlp_tensors(spec, 3));
  auto loaded = load_export(dir);
  Rng rng(5);
  const int D = direct->needs().dense_dim, A = direct->n_actions();
  std::vector<float> obs(D * 50);
  for (auto& v : obs) v = static_cast<float>(rng.uniform(-1, 1));
  std::vector<uint8_t> mask(A * 50, 1);
  std::vector<int32_t> a1(50), a2(50);
  std::vector<float> p1(A * 50), p2(A * 50);
  direct->act(dense_batch(obs.data(), mask.data(), 50, D, A), ActOptions{}, a1.data(), p1.data());
  loaded->act(dense_batch(obs.data(), mask.data(), 50, D, A), ActOptions{}, a2.data(), p2.data());
  EXPECT_EQ(a1, a2);
  EXPECT_EQ(p1, p2);
  EXPECT_EQ(load_any_policy(dir)->n_actions(), A);
}

TEST(Export, RefusesToOverwriteUnlessForcedAndNeverReplacesOtherDirectories) {
  const std::string root = testing::temp_dir();
  auto t = testing::make_test_world(100, 2);
  write_export(root + "/e", contents_for(t, 1));
  const std::string sha1 = sha256_file(root + "/e/model.safetensors");
  expect_error([&] { write_export(root + "/e", contents_for(t, 2)); }, "already exists");
  write_export(root + "/e", contents_for(t, 2), /*overwrite=*/true);
  EXPECT_NE(sha256_file(root + "/e/model.safetensors"), sha1);
  make_dirs(root + "/precious");
  write_file_atomic(root + "/precious/data.txt", "keep me");
  expect_error([&] { write_export(root + "/precious", contents_for(t, 2), true); }, "not an export directory");
  EXPECT_EQ(read_file(root + "/precious/data.txt"), "keep me");
}

TEST(Export, LoadingRefusesDamagedModifiedOrForeignExports) {
  const std::string root = testing::temp_dir();
  auto t = testing::make_test_world(100, 2);
  const std::string dir = root + "/e";
  auto fresh = [&] {
    fs::remove_all(dir);
    write_export(dir, contents_for(t, 4));
  };

  fresh();  // one flipped byte in the weights
  {
    std::string bytes = read_file(dir + "/model.safetensors");
    bytes[bytes.size() - 3] ^= 0x01;
    write_file_atomic(dir + "/model.safetensors", bytes);
  }
  expect_error([&] { load_export(dir); }, "does not match the manifest");

  fresh();  // truncated weights
  {
    std::string bytes = read_file(dir + "/model.safetensors");
    write_file_atomic(dir + "/model.safetensors", bytes.substr(0, bytes.size() - 4));
  }
  expect_error([&] { load_export(dir); }, "size");

  fresh();  // a file nobody vouched for
  write_file_atomic(dir + "/extra.bin", "x");
  expect_error([&] { load_export(dir); }, "'extra.bin' is not listed");

  fresh();  // a newer format
  {
    json m = json::parse(read_file(dir + "/manifest.json"));
    m["format_version"] = 2;
    write_file_atomic(dir + "/manifest.json", m.dump());
  }
  expect_error([&] { load_export(dir); }, "newer Conductor");

  fresh();  // another format
  {
    json m = json::parse(read_file(dir + "/manifest.json"));
    m["format"] = "something-else";
    write_file_atomic(dir + "/manifest.json", m.dump());
  }
  expect_error([&] { load_export(dir); }, "not a Conductor export");

  fresh();  // the listed model is missing
  fs::remove(dir + "/model.safetensors");
  expect_error([&] { load_export(dir); }, "missing");

  fresh();  // not JSON
  write_file_atomic(dir + "/manifest.json", "{oops");
  expect_error([&] { load_export(dir); }, "invalid JSON");

  expect_error([&] { load_export(root + "/nowhere"); }, "no such export directory");
  make_dirs(root + "/empty");
  expect_error([&] { load_export(root + "/empty"); }, "no manifest.json");

  // A manifest and weights that agree on hashes but not on shapes.
  fresh();
  {
    json m = json::parse(read_file(dir + "/manifest.json"));
    m["policy"]["config"]["hidden"] = {8, 8};
    write_file_atomic(dir + "/manifest.json", m.dump());
  }
  expect_error([&] { load_export(dir); }, "actor.0.weight");

  // A kind this build does not know.
  fresh();
  {
    json m = json::parse(read_file(dir + "/manifest.json"));
    m["policy"]["kind"] = "quantum";
    write_file_atomic(dir + "/manifest.json", m.dump());
  }
  expect_error([&] { load_export(dir); }, "unknown policy kind 'quantum' (known: ");
}

}  // namespace
}  // namespace conductor
