// The BERT sentence encoder (llm/bert.h, llm/sentence_encoder.h) against sentence-transformers:
// embeddings of the 500 golden strings (tests/tokenizer/wordpiece/strings.jsonl) within 1e-5 of
// SentenceTransformer.encode in f32 -- the random-weight fixtures in every run (both directory
// layouts, every supported pooling mode), all-MiniLM-L6-v2 when scripts/fetch-encoder.sh fetched it --
// and a clear error for every malformed directory.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "artifacts/safetensors.h"
#include "core/atomic_file.h"
#include "llm/sentence_encoder.h"
#include "tests/llm/llm_test_util.h"
#include "tests/tokenizer/wordpiece_test_util.h"

namespace conductor::llm {
namespace {

namespace fs = std::filesystem;
using llm::testing::expect_error;

torch::Tensor golden(const std::string& name) {
  static const safetensors::File f = safetensors::read_file(conductor::testing::source_path("tests/llm/encoder/goldens.safetensors"));
  const safetensors::Tensor& t = f.at(name);
  std::vector<float> v = t.to_f32(name);
  return torch::tensor(v).view({t.shape[0], t.shape[1]});
}

std::vector<std::string> first(std::size_t n) {
  const auto& s = conductor::testing::encoder_strings();
  return std::vector<std::string>(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n));
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

TEST(SentenceEncoderGolden, TinyMeanNormalizedMatchesSentenceTransformers) {
  SentenceEncoder enc = SentenceEncoder::load(conductor::testing::tiny_encoder_dir());
  EXPECT_EQ(enc.info().max_seq_length, 48);
  EXPECT_TRUE(enc.info().normalize);
  ASSERT_EQ(enc.info().pooling, std::vector<PoolingMode>{PoolingMode::kMean});
  const torch::Tensor got = enc.encode(first(500));
  const double diff = max_abs_diff(got, golden("tiny"));
  std::printf("bert_tiny: max |conductor - sentence-transformers| over 500 x 32 = %.3g\n", diff);
  EXPECT_LT(diff, 1e-5);
  EXPECT_LT((got.norm(2, -1) - 1).abs().max().item<double>(), 1e-5);
}

TEST(SentenceEncoderGolden, TinyClsMaxMeanSqrtLegacyLayoutMatchesSentenceTransformers) {
  SentenceEncoder enc = SentenceEncoder::load(conductor::testing::tiny_cls_encoder_dir());
  EXPECT_EQ(enc.info().max_seq_length, 40);
  EXPECT_FALSE(enc.info().normalize);
  EXPECT_EQ(enc.info().pooling, (std::vector<PoolingMode>{PoolingMode::kCls, PoolingMode::kMax, PoolingMode::kMeanSqrtLen}));
  EXPECT_EQ(enc.info().dimension, 48);
  const torch::Tensor want = golden("tiny_cls");
  const double diff = max_abs_diff(enc.encode(first(200)), want);
  std::printf("bert_tiny_cls: max |conductor - sentence-transformers| over 200 x 48 = %.3g (largest |value| %.3g)\n", diff,
              want.abs().max().item<double>());
  EXPECT_LT(diff, 1e-5);
}

TEST(SentenceEncoderGolden, MiniLMMatchesSentenceTransformers) {
  CONDUCTOR_REQUIRE_MINILM(dir);
  SentenceEncoder enc = SentenceEncoder::load(dir);
  EXPECT_EQ(enc.info().max_seq_length, 256);
  EXPECT_EQ(enc.info().dimension, 384);
  const double diff = max_abs_diff(enc.encode(first(500)), golden("minilm"));
  std::printf("all-MiniLM-L6-v2: max |conductor - sentence-transformers| over 500 x 384 = %.3g\n", diff);
  EXPECT_LT(diff, 1e-5);
}

TEST(SentenceEncoder, BatchingAndPaddingDoNotChangeEmbeddings) {
  SentenceEncoder enc = SentenceEncoder::load(conductor::testing::tiny_encoder_dir());
  const auto texts = first(40);
  const torch::Tensor batched = enc.encode(texts, 40);
  for (std::size_t i = 0; i < texts.size(); i += 7) {
    const torch::Tensor alone = enc.encode({texts[i]}, 1);
    EXPECT_LT(max_abs_diff(alone[0], batched[static_cast<int64_t>(i)]), 1e-5) << "string " << i;
  }
  EXPECT_EQ(enc.encode({}, 4).sizes(), (std::vector<int64_t>{0, 32}));
  EXPECT_THROW(enc.encode(texts, 0), Error);
}

TEST(SentenceEncoder, PoolingModes) {
  // Two sequences of 3 positions, the second with one padding position.
  const torch::Tensor h = torch::tensor({1.f, 2.f, 3.f, -4.f, 5.f, 100.f, -1.f, 0.f, 2.f, 6.f, -50.f, 50.f}).view({2, 3, 2});
  const torch::Tensor mask = torch::tensor({1, 1, 1, 1, 1, 0}, torch::kInt64).view({2, 3});
  auto check = [&](PoolingMode m, std::vector<float> want) {
    const torch::Tensor got = pool_embeddings(h, mask, {m}, false);
    EXPECT_LT(max_abs_diff(got, torch::tensor(want).view({2, 2})), 1e-6) << pooling_mode_name(m);
  };
  check(PoolingMode::kCls, {1, 2, -1, 0});
  check(PoolingMode::kMax, {5, 100, 2, 6});  // the padded (-50, 50) is never the max
  check(PoolingMode::kMean, {3, 98.f / 3, 0.5f, 3});
  check(PoolingMode::kMeanSqrtLen, {9 / std::sqrt(3.f), 98 / std::sqrt(3.f), 1 / std::sqrt(2.f), 6 / std::sqrt(2.f)});
  const torch::Tensor both = pool_embeddings(h, mask, {PoolingMode::kCls, PoolingMode::kMean}, true);
  EXPECT_EQ(both.sizes(), (std::vector<int64_t>{2, 4}));
  EXPECT_LT((both.norm(2, -1) - 1).abs().max().item<double>(), 1e-6);
}

// ---- malformed directories ----

std::string copy_tiny(const std::string& name = "bert_tiny") {
  const std::string dir = conductor::testing::temp_dir() + "/" + name;
  fs::copy(conductor::testing::source_path("tests/llm/fixtures/" + name), dir, fs::copy_options::recursive);
  return dir;
}

void edit_json(const std::string& path, const std::function<void(json&)>& edit) {
  json j = parse_json(read_file(path), path);
  edit(j);
  std::ofstream(path) << j.dump(2);
}

TEST(SentenceEncoderErrors, RefusesOtherArchitecturesByName) {
  std::string dir = copy_tiny();
  edit_json(dir + "/config.json", [](json& j) { j["model_type"] = "qwen2"; });
  expect_error([&] { SentenceEncoder::load(dir); }, {dir + "/config.json", "model_type \"qwen2\" is not supported", "BERT"});
  edit_json(dir + "/config.json", [](json& j) {
    j.erase("model_type");
    j["architectures"] = {"Qwen2ForCausalLM"};
  });
  expect_error([&] { SentenceEncoder::load(dir); }, {"architecture \"Qwen2ForCausalLM\" is not supported"});
  edit_json(dir + "/config.json", [](json& j) {
    j["model_type"] = "bert";
    j["architectures"] = {"BertModel"};
    j["hidden_act"] = "relu";
  });
  expect_error([&] { SentenceEncoder::load(dir); }, {"hidden_act \"relu\" is not supported"});
  edit_json(dir + "/config.json", [](json& j) {
    j["hidden_act"] = "gelu";
    j["position_embedding_type"] = "relative_key";
  });
  expect_error([&] { SentenceEncoder::load(dir); }, {"position_embedding_type \"relative_key\""});
  edit_json(dir + "/config.json", [](json& j) {
    j["position_embedding_type"] = "absolute";
    j.erase("hidden_size");
  });
  expect_error([&] { SentenceEncoder::load(dir); }, {"config.json", "missing key 'hidden_size'"});
}

TEST(SentenceEncoderErrors, ModulesAndPooling) {
  std::string dir = copy_tiny();
  fs::remove(dir + "/modules.json");
  expect_error([&] { SentenceEncoder::load(dir); }, {dir, "no modules.json"});
  dir = copy_tiny();
  edit_json(dir + "/modules.json", [](json& j) {
    j.push_back({{"idx", 3}, {"name", "3"}, {"path", "3_Dense"}, {"type", "sentence_transformers.models.Dense"}});
  });
  expect_error([&] { SentenceEncoder::load(dir); }, {"modules.json: [3]", "\"sentence_transformers.models.Dense\" is not supported"});
  dir = copy_tiny();
  edit_json(dir + "/1_Pooling/config.json", [](json& j) { j["pooling_mode"] = "weightedmean"; });
  expect_error([&] { SentenceEncoder::load(dir); }, {"1_Pooling/config.json", "pooling mode \"weightedmean\" is not supported"});
  edit_json(dir + "/1_Pooling/config.json", [](json& j) {
    j["pooling_mode"] = "mean";
    j["embedding_dimension"] = 64;
  });
  expect_error([&] { SentenceEncoder::load(dir); }, {"embedding_dimension 64 does not match the model's hidden_size 32"});
  fs::remove(dir + "/1_Pooling/config.json");
  expect_error([&] { SentenceEncoder::load(dir); }, {"1_Pooling/config.json: missing"});
  dir = copy_tiny("bert_tiny_cls");
  edit_json(dir + "/1_Pooling/config.json", [](json& j) { j["pooling_mode_lasttoken"] = true; });
  expect_error([&] { SentenceEncoder::load(dir); }, {"pooling_mode_lasttoken is true"});
  dir = copy_tiny("bert_tiny_cls");
  edit_json(dir + "/sentence_bert_config.json", [](json& j) { j["max_seq_length"] = 65; });
  expect_error([&] { SentenceEncoder::load(dir); }, {"sentence_bert_config.json", "max_seq_length 65 exceeds", "64"});
  edit_json(dir + "/sentence_bert_config.json", [](json& j) {
    j["max_seq_length"] = 40;
    j["do_lower_case"] = true;
  });
  expect_error([&] { SentenceEncoder::load(dir); }, {"do_lower_case true is not supported"});
  dir = copy_tiny();
  edit_json(dir + "/config_sentence_transformers.json", [](json& j) { j["default_prompt_name"] = "query"; });
  expect_error([&] { SentenceEncoder::load(dir); }, {"default_prompt_name \"query\"", "prompts are not supported"});
}

TEST(SentenceEncoderErrors, WeightsByTensorName) {
  const std::string dir = copy_tiny();
  const std::string path = dir + "/model.safetensors";
  const safetensors::File original = safetensors::read_file(path);
  auto write = [&](const std::function<void(safetensors::File&)>& edit) {
    safetensors::File f = original;
    edit(f);
    safetensors::write_file(path, f);
  };
  write([](safetensors::File& f) { f.tensors.erase("encoder.layer.1.output.dense.bias"); });
  expect_error([&] { SentenceEncoder::load(dir); }, {path, "tensor 'encoder.layer.1.output.dense.bias' is missing"});
  write([](safetensors::File& f) { f.tensors["encoder.layer.2.output.dense.bias"] = f.tensors.at("encoder.layer.1.output.dense.bias"); });
  expect_error([&] { SentenceEncoder::load(dir); }, {path, "unexpected tensor 'encoder.layer.2.output.dense.bias'"});
  write([](safetensors::File& f) {
    f.tensors["encoder.layer.0.attention.self.query.bias"] = safetensors::Tensor::from_f32({31}, std::vector<float>(31, 0.f));
  });
  expect_error([&] { SentenceEncoder::load(dir); }, {"tensor 'encoder.layer.0.attention.self.query.bias'", "shape [31], expected [32]"});
  write([](safetensors::File& f) {
    auto& t = f.tensors.at("embeddings.LayerNorm.bias");
    t.dtype = safetensors::DType::kI32;
  });
  expect_error([&] { SentenceEncoder::load(dir); }, {"embeddings.LayerNorm.bias", "dtype I32 is not supported"});
  // The pooler and position_ids buffer that transformers writes are accepted and not read.
  write([](safetensors::File& f) {
    f.tensors["pooler.dense.bias"] = f.tensors.at("embeddings.LayerNorm.bias");
    f.tensors["embeddings.position_ids"] = safetensors::Tensor::from_f32({1}, std::vector<float>{0.f});
  });
  SentenceEncoder enc = SentenceEncoder::load(dir);
  EXPECT_LT(max_abs_diff(enc.encode(first(20)), golden("tiny").narrow(0, 0, 20)), 1e-5);
}

TEST(SentenceEncoderErrors, SequenceLongerThanThePositionTable) {
  SentenceEncoder enc = SentenceEncoder::load(conductor::testing::tiny_encoder_dir());
  std::vector<int32_t> ids(65, 5);
  expect_error([&] { enc.encode_ids({ids}); }, {"65 tokens is longer than the model's max_position_embeddings 64"});
  expect_error([&] { enc.encode_ids({{2, 5000, 3}}); }, {"token id 5000 is outside the model's vocabulary [0, 1000)"});
}

}  // namespace
}  // namespace conductor::llm
