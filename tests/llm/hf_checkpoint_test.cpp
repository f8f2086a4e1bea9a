// HF checkpoint directories: save/load round trips (single file, sharded, dtype conversion), and
// every malformed input an error that names the file and the tensor.
#include "llm/hf_checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "artifacts/safetensors.h"
#include "core/atomic_file.h"
#include "core/json_util.h"
#include "tests/llm/llm_test_util.h"

namespace conductor::llm {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;
using testing::fixture;
using testing::random_ids;
using testing::rel_err;
using testing::tiny_model;

torch::Tensor logits_of(Qwen2ForCausalLM& m) {
  torch::NoGradGuard g;
  return m->forward(random_ids(2, 5, m->config().vocab_size, 99));
}

TEST(HfCheckpoint, SaveThenLoadGivesTheSameModel) {
  const std::string root = conductor::testing::temp_dir();
  for (bool tied : {true, false}) {
    Qwen2ForCausalLM m = tiny_model(1, tied);
    const std::string single = root + (tied ? "/tied" : "/untied");
    save_hf_checkpoint(m, single);
    EXPECT_TRUE(fs::exists(single + "/model.safetensors"));
    EXPECT_FALSE(fs::exists(single + "/model.safetensors.index.json"));
    const json config = parse_json(read_file(single + "/config.json"), "config.json");
    EXPECT_EQ(config.at("architectures"), json({"Qwen2ForCausalLM"}));
    EXPECT_EQ(config.at("tie_word_embeddings"), tied);
    EXPECT_EQ(config.at("torch_dtype"), "float32");
    const auto file = safetensors::read_file(single + "/model.safetensors");
    EXPECT_EQ(file.metadata.at("format"), "pt");
    EXPECT_EQ(file.has("lm_head.weight"), !tied);
    Qwen2ForCausalLM back = load_hf_checkpoint(single);
    EXPECT_TRUE(torch::equal(logits_of(back), logits_of(m)));
  }
}

TEST(HfCheckpoint, ShardedSaveWritesAnIndexAndLoadsBack) {
  const std::string dir = conductor::testing::temp_dir() + "/sharded";
  Qwen2ForCausalLM m = tiny_model(2, false);
  SaveOptions opt;
  opt.max_shard_bytes = 200 * 1000;  // 1.0 MB of f32 weights -> several shards
  save_hf_checkpoint(m, dir, opt);
  const json index = parse_json(read_file(dir + "/model.safetensors.index.json"), "index");
  EXPECT_EQ(index.at("metadata").at("total_size"), m->config().num_parameters() * 4);
  std::set<std::string> shards;
  for (const auto& [name, shard] : index.at("weight_map").items()) shards.insert(shard.get<std::string>());
  EXPECT_EQ(shards.size(), 6u);
  EXPECT_TRUE(shards.count("model-00001-of-00006.safetensors"));
  EXPECT_EQ(index.at("weight_map").size(), hf_tensor_names(m->config()).size());
  // Every shard within the limit (plus its header), except one holding a single larger tensor: the
  // 1024 x 64 f32 embedding (262144 bytes).
  std::map<std::string, int> tensors_in;
  for (const auto& [name, shard] : index.at("weight_map").items()) ++tensors_in[shard.get<std::string>()];
  for (const auto& s : shards)
    if (tensors_in[s] > 1) {
      EXPECT_LE(fs::file_size(dir + "/" + s), 200u * 1000u + 4096u) << s;
    }
  EXPECT_EQ(index.at("weight_map").at("model.embed_tokens.weight"), "model-00001-of-00006.safetensors");
  EXPECT_EQ(tensors_in["model-00001-of-00006.safetensors"], 1);
  Qwen2ForCausalLM back = load_hf_checkpoint(dir);
  EXPECT_TRUE(torch::equal(logits_of(back), logits_of(m)));
}

TEST(HfCheckpoint, DtypeConversionOnSaveAndLoad) {
  const std::string root = conductor::testing::temp_dir();
  Qwen2ForCausalLM m = tiny_model(3);
  SaveOptions opt;
  opt.dtype = DType::kBF16;
  save_hf_checkpoint(m, root + "/bf16", opt);
  EXPECT_EQ(parse_json(read_file(root + "/bf16/config.json"), "c").at("torch_dtype"), "bfloat16");
  EXPECT_EQ(safetensors::read_file(root + "/bf16/model.safetensors").at("model.norm.weight").dtype,
            safetensors::DType::kBF16);
  Qwen2ForCausalLM as_f32 = load_hf_checkpoint(root + "/bf16", {DType::kF32});
  Qwen2ForCausalLM as_bf16 = load_hf_checkpoint(root + "/bf16", {DType::kBF16});
  // bf16 -> f32 is exact: the f32 weights are the bf16-rounded originals.
  const torch::Tensor w = m->model->layer(1)->mlp->up_proj->weight;
  EXPECT_TRUE(torch::equal(as_f32->model->layer(1)->mlp->up_proj->weight, w.to(torch::kBFloat16).to(torch::kFloat32)));
  EXPECT_TRUE(torch::equal(as_bf16->model->layer(1)->mlp->up_proj->weight, w.to(torch::kBFloat16)));
  opt.dtype = DType::kF16;
  save_hf_checkpoint(m, root + "/f16", opt);
  Qwen2ForCausalLM from_f16 = load_hf_checkpoint(root + "/f16", {DType::kF32});
  EXPECT_LT(rel_err(logits_of(from_f16), logits_of(m)), 1e-2);
}

TEST(HfCheckpoint, SaveIsAtomicAndRefusesToOverwriteByDefault) {
  const std::string dir = conductor::testing::temp_dir() + "/ckpt";
  Qwen2ForCausalLM m = tiny_model(4);
  save_hf_checkpoint(m, dir);
  expect_error([&] { save_hf_checkpoint(m, dir); }, {dir, "already exists"});
  Qwen2ForCausalLM other = tiny_model(5);
  SaveOptions opt;
  opt.overwrite = true;
  save_hf_checkpoint(other, dir, opt);
  Qwen2ForCausalLM back = load_hf_checkpoint(dir);
  EXPECT_TRUE(torch::equal(logits_of(back), logits_of(other)));
  for (const auto& e : fs::directory_iterator(fs::path(dir).parent_path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

// ---- Malformed inputs ----

class Malformed : public ::testing::Test {
 protected:
  void SetUp() override {
    root = conductor::testing::temp_dir();
    model = tiny_model(6);
    single = root + "/single";
    sharded = root + "/sharded";
    save_hf_checkpoint(model, single);
    SaveOptions opt;
    opt.max_shard_bytes = 300 * 1000;
    save_hf_checkpoint(model, sharded, opt);
  }
  json index() { return parse_json(read_file(sharded + "/model.safetensors.index.json"), "index"); }
  void write_index(const json& j) { write_json_atomic(sharded + "/model.safetensors.index.json", j); }
  // Rewrites the single file through `edit` of its File.
  template <class F>
  void edit_single(F edit) {
    safetensors::File f = safetensors::read_file(single + "/model.safetensors");
    edit(f);
    safetensors::write_file(single + "/model.safetensors", f);
  }
  void edit_config(const std::string& dir, const std::function<void(json&)>& edit) {
    json j = parse_json(read_file(dir + "/config.json"), "config");
    edit(j);
    write_json_atomic(dir + "/config.json", j);
  }
  std::string root, single, sharded;
  Qwen2ForCausalLM model{nullptr};
};

TEST_F(Malformed, NoDirectoryNoConfigNoWeights) {
  expect_error([&] { load_hf_checkpoint(root + "/nope"); }, {root + "/nope", "not a directory"});
  fs::remove(single + "/config.json");
  expect_error([&] { load_hf_checkpoint(single); }, {single, "no config.json"});
  fs::remove(sharded + "/model.safetensors.index.json");
  expect_error([&] { load_hf_checkpoint(sharded); }, {sharded, "model.safetensors", "model.safetensors.index.json"});
}

TEST_F(Malformed, ConfigOfAnotherArchitectureOrMissingAKey) {
  edit_config(single, [](json& j) { j["architectures"] = {"LlamaForCausalLM"}; });
  expect_error([&] { load_hf_checkpoint(single); }, {single + "/config.json", "LlamaForCausalLM", "Qwen2ForCausalLM"});
  edit_config(sharded, [](json& j) { j.erase("num_hidden_layers"); });
  expect_error([&] { load_hf_checkpoint(sharded); }, {sharded + "/config.json", "missing key 'num_hidden_layers'"});
}

TEST_F(Malformed, MissingShard) {
  fs::remove(sharded + "/model-00002-of-00004.safetensors");
  expect_error([&] { load_hf_checkpoint(sharded); },
               {"model.safetensors.index.json", "shard 'model-00002-of-00004.safetensors' is missing", "model.layers."});
}

TEST_F(Malformed, IndexNamesATensorItsShardLacks) {
  json j = index();
  j["weight_map"]["model.norm.weight"] = "model-00001-of-00004.safetensors";
  write_index(j);
  expect_error([&] { load_hf_checkpoint(sharded); },
               {"model.safetensors.index.json", "'model.norm.weight'", "model-00001-of-00004.safetensors", "no such tensor"});
}

TEST_F(Malformed, ShardTensorNotInTheIndex) {
  json j = index();
  j["weight_map"].erase("model.layers.0.mlp.up_proj.weight");
  write_index(j);
  expect_error([&] { load_hf_checkpoint(sharded); },
               {"model-00002-of-00004.safetensors", "'model.layers.0.mlp.up_proj.weight'", "not listed"});
}

TEST_F(Malformed, MissingTensor) {
  edit_single([](safetensors::File& f) { f.tensors.erase("model.layers.3.self_attn.k_proj.bias"); });
  expect_error([&] { load_hf_checkpoint(single); },
               {single + "/model.safetensors", "'model.layers.3.self_attn.k_proj.bias' is missing"});
}

TEST_F(Malformed, ExtraTensor) {
  edit_single([](safetensors::File& f) { f.tensors["model.layers.0.self_attn.rotary_emb.inv_freq"] = f.tensors.at("model.norm.weight"); });
  expect_error([&] { load_hf_checkpoint(single); },
               {single + "/model.safetensors", "unexpected tensor 'model.layers.0.self_attn.rotary_emb.inv_freq'"});
}

TEST_F(Malformed, HeadTensorInATiedCheckpoint) {
  edit_single([](safetensors::File& f) { f.tensors["lm_head.weight"] = f.tensors.at("model.embed_tokens.weight"); });
  expect_error([&] { load_hf_checkpoint(single); }, {"'lm_head.weight'", "tie_word_embeddings = true"});
  edit_config(single, [](json& j) { j["tie_word_embeddings"] = false; });
  EXPECT_NO_THROW(load_hf_checkpoint(single));
  edit_single([](safetensors::File& f) { f.tensors.erase("lm_head.weight"); });
  expect_error([&] { load_hf_checkpoint(single); }, {"'lm_head.weight' is missing", "tie_word_embeddings = false"});
}

TEST_F(Malformed, WrongShape) {
  edit_single([](safetensors::File& f) {
    f.tensors["model.layers.1.mlp.down_proj.weight"] = safetensors::Tensor::from_f32({64, 175}, std::vector<float>(64 * 175));
  });
  expect_error([&] { load_hf_checkpoint(single); },
               {single + "/model.safetensors", "'model.layers.1.mlp.down_proj.weight'", "shape [64, 175], expected [64, 176]"});
}

TEST_F(Malformed, UnsupportedDtype) {
  edit_single([](safetensors::File& f) {
    auto& t = f.tensors["model.norm.weight"];
    t.dtype = safetensors::DType::kI32;  // same byte size as F32
  });
  expect_error([&] { load_hf_checkpoint(single); }, {single + "/model.safetensors", "'model.norm.weight'", "dtype I32", "BF16, F16, F32"});
}

TEST_F(Malformed, CorruptHeader) {
  const std::string path = sharded + "/model-00003-of-00004.safetensors";
  std::string bytes = read_file(path);
  bytes[9] = '#';  // right after the opening brace of the JSON header
  write_file_atomic(path, bytes);
  expect_error([&] { load_hf_checkpoint(sharded); }, {path, "not valid JSON"});
  write_file_atomic(path, bytes.substr(0, 5));
  expect_error([&] { load_hf_checkpoint(sharded); }, {path, "truncated"});
  std::string body = read_file(single + "/model.safetensors");
  write_file_atomic(single + "/model.safetensors", body.substr(0, body.size() - 10));
  expect_error([&] { load_hf_checkpoint(single); }, {single + "/model.safetensors", "out of range"});
}

TEST_F(Malformed, IndexThatIsNotAnIndex) {
  write_file_atomic(sharded + "/model.safetensors.index.json", "{\"weight_map\": [1, 2]}");
  expect_error([&] { load_hf_checkpoint(sharded); }, {"model.safetensors.index.json", "weight_map"});
  write_index(json{{"weight_map", {{"model.norm.weight", "../elsewhere.safetensors"}}}});
  expect_error([&] { load_hf_checkpoint(sharded); }, {"'../elsewhere.safetensors' is not a file name"});
}

TEST_F(Malformed, ShapesThatDoNotMatchTheGivenModel) {
  Qwen2Config other = model->config();
  other.intermediate_size = 64;
  Qwen2ForCausalLM small(other);
  expect_error([&] { load_hf_weights(small, single); }, {"'model.layers.0.mlp.gate_proj.weight'", "expected [64, 64]"});
}

TEST(HfCheckpoint, FixturesWrittenByThePythonGeneratorLoad) {
  // The independent writer's files (make_fixtures.py) pass every check of the reader.
  for (const char* name : {"tied_f32_single", "untied_f32_sharded", "tied_bf16_sharded", "untied_bf16_single", "tied_f16_single"}) {
    const Qwen2Config c = read_hf_config(fixture(name));
    EXPECT_EQ(c.hidden_size, 32) << name;
    EXPECT_NO_THROW(load_hf_checkpoint(fixture(name))) << name;
  }
}

}  // namespace
}  // namespace conductor::llm
