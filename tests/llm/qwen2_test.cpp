// The Qwen2 model against the independent Python reference (tests/llm/reference/qwen2_ref.py, whose
// float64 logits are checked in with the fixtures by make_fixtures.py), and its own invariants:
// KV-cache decoding equals the full forward, right-padded batches equal per-sequence runs, split
// layer ranges equal the whole stack, vocabulary subsets and resizing keep the logits.
#include "llm/qwen2.h"

#include <gtest/gtest.h>

#include "artifacts/safetensors.h"
#include "llm/hf_checkpoint.h"
#include "tests/llm/llm_test_util.h"

namespace conductor::llm {
namespace {

using testing::expect_error;
using testing::fixture;
using testing::random_ids;
using testing::rel_err;
using testing::tiny_model;

// ---- Config ----

TEST(Qwen2Config, PresetParameterCountsArePublishedOnes) {
  // Qwen2.5-0.5B: 494,032,768 parameters (tied); Qwen2.5-7B: 7,615,616,512 (untied) -- the sums of the
  // tensor sizes of the published checkpoints.
  EXPECT_EQ(Qwen2Config::preset("qwen2.5-0.5b").num_parameters(), 494032768);
  EXPECT_EQ(Qwen2Config::preset("qwen2.5-7b").num_parameters(), 7615616512);
  // Qwen2.5-1.5B: 1,543,714,304 (tied).
  EXPECT_EQ(Qwen2Config::preset("qwen2.5-1.5b").num_parameters(), 1543714304);
  // 7B KV cache: 2 (K, V) x 28 layers x 4 KV heads x 128 dims x 2 bytes = 57344 bytes per token.
  EXPECT_EQ(Qwen2Config::preset("qwen2.5-7b").kv_cache_bytes_per_token(DType::kBF16), 57344);
}

TEST(Qwen2Config, ModuleParametersMatchTheConfigCountAndHfNames) {
  for (bool tied : {true, false}) {
    Qwen2ForCausalLM m = tiny_model(1, tied);
    EXPECT_EQ(m->num_parameters(), m->config().num_parameters());
    std::vector<std::string> names;
    for (const auto& kv : hf_named_weights(m)) names.push_back(kv.first);
    EXPECT_EQ(names, hf_tensor_names(m->config()));
  }
  Qwen2ForCausalLM tiny = tiny_model();
  EXPECT_EQ(tiny->num_parameters(), 250944);
  const Qwen2Config small = Qwen2Config::preset("small");
  EXPECT_EQ(Qwen2ForCausalLM(small, DType::kBF16, torch::kCPU, Init::kUninitialized)->num_parameters(),
            small.num_parameters());
}

TEST(Qwen2Config, JsonRoundTripAndDefaults) {
  Qwen2Config c = Qwen2Config::preset("qwen2.5-7b");
  const Qwen2Config back = Qwen2Config::from_json(c.to_json(), "x");
  EXPECT_EQ(back.to_json(), c.to_json());
  EXPECT_EQ(back.ignored_keys, (std::vector<std::string>{"max_window_layers", "sliding_window", "use_cache"}));

  // Optional keys take Qwen2Config's defaults; harmless extra keys are listed, not refused.
  json j = {{"architectures", {"Qwen2ForCausalLM"}}, {"vocab_size", 10}, {"hidden_size", 8},
            {"intermediate_size", 16}, {"num_hidden_layers", 1}, {"num_attention_heads", 2},
            {"bos_token_id", 1}, {"rope_scaling", nullptr}, {"sliding_window", 4096}};
  const Qwen2Config d = Qwen2Config::from_json(j, "cfg.json");
  EXPECT_EQ(d.num_key_value_heads, 2);
  EXPECT_EQ(d.rope_theta, 10000.0);
  EXPECT_EQ(d.rms_norm_eps, 1e-6);
  EXPECT_FALSE(d.tie_word_embeddings);
  EXPECT_EQ(d.ignored_keys, (std::vector<std::string>{"bos_token_id", "sliding_window"}));
}

TEST(Qwen2Config, RefusesWhatChangesTheMath) {
  const json good = Qwen2Config::preset("tiny").to_json();
  auto with = [&](const std::string& key, const json& value) {
    json j = good;
    j[key] = value;
    return j;
  };
  auto refused = [](const json& j, std::initializer_list<std::string> needles) {
    expect_error([&] { Qwen2Config::from_json(j, "dir/config.json"); }, needles);
  };
  refused(with("architectures", {"LlamaForCausalLM"}), {"dir/config.json", "LlamaForCausalLM", "Qwen2ForCausalLM"});
  refused(with("model_type", "llama"), {"model_type", "llama"});
  refused(with("rope_scaling", {{"type", "linear"}, {"factor", 2.0}}), {"rope_scaling", "linear"});
  refused(with("rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}}), {"rope_scaling", "yarn"});
  refused(with("use_sliding_window", true), {"use_sliding_window", "sliding-window"});
  refused(with("hidden_act", "gelu"), {"hidden_act", "gelu"});
  refused(with("use_mrope", true), {"use_mrope"});
  refused(with("attention_dropout", 0.1), {"attention_dropout"});
  refused(with("head_dim", 32), {"head_dim"});
  refused(with("quantization_config", {{"quant_method", "gptq"}}), {"quantization_config"});
  refused(with("layer_types", {"full_attention", "sliding_attention"}), {"layer_types[1]", "sliding_attention"});
  refused(with("num_key_value_heads", 3), {"num_key_value_heads 3"});
  refused(with("hidden_size", "64"), {"'hidden_size' must be an integer"});
  json missing = good;
  missing.erase("intermediate_size");
  refused(missing, {"dir/config.json", "missing key 'intermediate_size'"});
  missing = good;
  missing.erase("architectures");
  refused(missing, {"missing key 'architectures'"});
  // A default rope_scaling object is plain rotary: accepted.
  EXPECT_NO_THROW(Qwen2Config::from_json(with("rope_scaling", {{"rope_type", "default"}}), "x"));
}

TEST(Qwen2Config, UnknownPresetListsTheKnownOnes) {
  expect_error([] { Qwen2Config::preset("qwen3"); }, {"qwen3", "tiny", "small", "qwen2.5-0.5b", "qwen2.5-7b"});
}

TEST(Qwen2, F16OnTheCpuIsRefusedWithTheReason) {
  expect_error([] { Qwen2ForCausalLM(Qwen2Config::preset("tiny"), DType::kF16); }, {"f16", "CUDA", "bf16"});
  expect_error([] { parse_device("tpu"); }, {"tpu", "cpu, cuda"});
  EXPECT_TRUE(parse_device("cpu").is_cpu());
}

// ---- Against the reference ----

// Every fixture (tied and untied, single file and sharded, stored in f32, bf16 and f16), loaded into
// an f32 model: logits within 1e-4 of the float64 reference, relative to the largest logit.
TEST(Qwen2Reference, F32LogitsMatchTheIndependentReference) {
  for (const char* name : {"tied_f32_single", "untied_f32_sharded", "tied_bf16_sharded", "untied_bf16_single",
                           "tied_f16_single"}) {
    SCOPED_TRACE(name);
    Qwen2ForCausalLM m = load_hf_checkpoint(fixture(name), {DType::kF32});
    const auto ref = safetensors::read_file(fixture(name) + "/reference.safetensors");
    torch::NoGradGuard no_grad;
    for (int k = 0; k < 3; ++k) {
      const auto& ids_t = ref.at("ids_" + std::to_string(k));
      std::vector<int64_t> ids(ids_t.numel());
      std::memcpy(ids.data(), ids_t.data.data(), ids_t.data.size());
      const torch::Tensor input = torch::tensor(ids, torch::kInt64).unsqueeze(0);
      const auto& lt = ref.at("logits_" + std::to_string(k));
      const torch::Tensor want = torch::from_blob(const_cast<char*>(lt.data.data()), lt.shape, torch::kFloat32).clone();
      const torch::Tensor got = m->forward(input)[0];
      const double err = rel_err(got, want);
      EXPECT_LT(err, 1e-4) << "sequence " << k;
      EXPECT_GT(want.abs().max().item<double>(), 1.0);  // the check is not vacuous
    }
  }
}

// bf16 compute against the same float64 reference. Tolerance 2.5e-2 relative to the largest logit:
// bf16 keeps 8 significant bits (unit roundoff 2^-9 = 2e-3 per rounding) and a forward rounds dozens
// of times; python3-torch's own bf16 forward of these fixtures is 0.55e-2 to 1.0e-2 off (printed by
// make_fixtures.py; ours: 0.7e-2 to 0.9e-2 measured with `conductor model logits`), so this allows
// 2.5x the reference implementation's own bf16 error.
TEST(Qwen2Reference, Bf16LogitsWithinTheDocumentedTolerance) {
  for (const char* name : {"tied_bf16_sharded", "untied_bf16_single", "untied_f32_sharded"}) {
    SCOPED_TRACE(name);
    Qwen2ForCausalLM m = load_hf_checkpoint(fixture(name), {DType::kBF16});
    EXPECT_EQ(m->model->embed_tokens->weight.scalar_type(), torch::kBFloat16);
    const auto ref = safetensors::read_file(fixture(name) + "/reference.safetensors");
    torch::NoGradGuard no_grad;
    for (int k = 0; k < 3; ++k) {
      const auto& ids_t = ref.at("ids_" + std::to_string(k));
      const torch::Tensor input =
          torch::from_blob(const_cast<char*>(ids_t.data.data()), {1, ids_t.shape[0]}, torch::kInt64).clone();
      const auto& lt = ref.at("logits_" + std::to_string(k));
      const torch::Tensor want = torch::from_blob(const_cast<char*>(lt.data.data()), lt.shape, torch::kFloat32).clone();
      const double err = rel_err(m->forward(input)[0], want);
      EXPECT_LT(err, 2.5e-2) << "sequence " << k;
      EXPECT_GT(err, 0.0);  // it did compute in bf16
    }
  }
}

// ---- Invariants ----

TEST(Qwen2, KvCacheDecodingEqualsTheFullForward) {
  for (bool tied : {true, false}) {
    Qwen2ForCausalLM m = tiny_model(3, tied);
    torch::NoGradGuard no_grad;
    const torch::Tensor ids = random_ids(2, 12, m->config().vocab_size, 4);
    const torch::Tensor full = m->forward(ids);
    KVCache cache = m->make_cache(2, 4);  // small capacity: grows while decoding
    std::vector<torch::Tensor> parts = {m->forward(ids.narrow(1, 0, 5), &cache)};
    for (int64_t t = 5; t < 12; ++t) parts.push_back(m->forward(ids.narrow(1, t, 1), &cache));
    EXPECT_EQ(cache.length(), 12);
    EXPECT_GE(cache.capacity(), 12);
    const torch::Tensor stepwise = torch::cat(parts, 1);
    EXPECT_LT(rel_err(stepwise, full), 1e-5);
    EXPECT_GT(full.abs().max().item<double>(), 0.5);
  }
}

TEST(Qwen2, KvCacheTruncateAndCopyRewindToAPrefix) {
  Qwen2ForCausalLM m = tiny_model(5);
  torch::NoGradGuard no_grad;
  const int64_t V = m->config().vocab_size;
  const torch::Tensor prefix = random_ids(1, 6, V, 6), a = random_ids(1, 3, V, 7), b = random_ids(1, 4, V, 8);
  KVCache cache = m->make_cache(1, 32);
  m->forward(prefix, &cache);
  KVCache saved = cache.copy();
  m->forward(a, &cache);  // episode branch a
  cache.truncate(6);      // back to the prefix, then branch b
  const torch::Tensor via_truncate = m->forward(b, &cache);
  const torch::Tensor via_copy = m->forward(b, &saved);
  const torch::Tensor direct = m->forward(torch::cat({prefix, b}, 1)).narrow(1, 6, 4);
  EXPECT_LT(rel_err(via_truncate, direct), 1e-5);
  EXPECT_TRUE(torch::equal(via_truncate, via_copy));
  // K and V of 4 layers x 2 KV heads x 16 dims, f32.
  EXPECT_EQ(cache.bytes_per_token(), 2 * 4 * 2 * 16 * 4);
  EXPECT_EQ(cache.bytes_per_token(), m->config().kv_cache_bytes_per_token(DType::kF32));
}

TEST(Qwen2, RightPaddedBatchEqualsEachSequenceAlone) {
  Qwen2ForCausalLM m = tiny_model(9);
  torch::NoGradGuard no_grad;
  const int64_t V = m->config().vocab_size;
  const torch::Tensor s0 = random_ids(1, 5, V, 10), s1 = random_ids(1, 9, V, 11);
  // s0 padded with arbitrary tokens (not a pad id: whatever follows must not matter).
  const torch::Tensor batch = torch::cat({torch::cat({s0, random_ids(1, 4, V, 12)}, 1), s1}, 0);
  const torch::Tensor h = m->forward_hidden(batch);
  const torch::Tensor h0 = m->forward_hidden(s0), h1 = m->forward_hidden(s1);
  EXPECT_LT(rel_err(h[0].narrow(0, 0, 5), h0[0]), 1e-5);
  EXPECT_LT(rel_err(h[1], h1[0]), 1e-5);
  // The last real token of s0 (position 4) is the one a policy reads.
  EXPECT_LT(rel_err(h[0][4], h0[0][4]), 1e-5);
}

TEST(Qwen2, LayerRangesComposeToTheWholeStack) {
  Qwen2ForCausalLM m = tiny_model(13);
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = random_ids(2, 7, m->config().vocab_size, 14);
  const torch::Tensor whole = m->forward_hidden(ids);
  // The frozen lower layers once, cached, then the top layers: the same numbers.
  const torch::Tensor lower = m->forward_layers(m->embed(ids), 0, 3, 0);
  const torch::Tensor split = m->final_norm(m->forward_layers(lower, 3, 4, 0));
  EXPECT_TRUE(torch::equal(split, whole));
  // Top layers with a cache: prefix then continuation.
  KVCache cache = m->make_cache(2, 16);
  const torch::Tensor top_a = m->forward_layers(lower.narrow(1, 0, 4), 3, 4, 0, &cache);
  const torch::Tensor top_b = m->forward_layers(lower.narrow(1, 4, 3), 3, 4, 4, &cache);
  EXPECT_EQ(cache.length(3), 7);
  EXPECT_EQ(cache.length(0), 0);
  EXPECT_LT(rel_err(m->final_norm(torch::cat({top_a, top_b}, 1)), whole), 1e-5);
}

TEST(Qwen2, SubsetLogitsAreTheFullLogitsColumns) {
  for (bool tied : {true, false}) {
    Qwen2ForCausalLM m = tiny_model(15, tied);
    torch::NoGradGuard no_grad;
    const torch::Tensor h = m->forward_hidden(random_ids(2, 3, m->config().vocab_size, 16));
    const torch::Tensor rows = torch::tensor(std::vector<int64_t>{1020, 3, 517, 1023}, torch::kInt64);
    EXPECT_LT(rel_err(m->lm_logits(h, rows), m->lm_logits(h).index_select(-1, rows)), 1e-6);
  }
}

TEST(Qwen2, ResizeTokenEmbeddingsKeepsOldLogitsAndStartsNewRowsAtTheMean) {
  for (bool tied : {true, false}) {
    Qwen2ForCausalLM m = tiny_model(17, tied);
    torch::NoGradGuard no_grad;
    const torch::Tensor ids = random_ids(1, 6, 1024, 18);
    const torch::Tensor before = m->forward(ids);
    EXPECT_EQ(m->resize_token_embeddings(1030), 1024);
    EXPECT_EQ(m->config().vocab_size, 1030);
    EXPECT_EQ(m->model->embed_tokens->weight.size(0), 1030);
    EXPECT_EQ(m->head_weight().size(0), 1030);
    EXPECT_EQ(m->num_parameters(), m->config().num_parameters());
    const torch::Tensor after = m->forward(ids);
    EXPECT_EQ(after.size(-1), 1030);
    EXPECT_LT(rel_err(after.narrow(-1, 0, 1024), before), 1e-6);
    // New embedding rows: the old rows' mean, up to noise of 1e-9 of their variance.
    const torch::Tensor w = m->model->embed_tokens->weight;
    const torch::Tensor mean = w.narrow(0, 0, 1024).mean(0);
    const double spread = w.narrow(0, 0, 1024).std(0).max().item<double>();
    EXPECT_LT((w.narrow(0, 1024, 6) - mean).abs().max().item<double>(), 1e-3 * spread);
    // The new tokens can be fed in.
    EXPECT_NO_THROW(m->forward(torch::tensor(std::vector<int64_t>{1029, 1024}, torch::kInt64).unsqueeze(0)));
  }
}

TEST(Qwen2, TokenIdsOutsideTheVocabularyAreAnError) {
  Qwen2ForCausalLM m = tiny_model();
  expect_error([&] { m->forward(torch::tensor(std::vector<int64_t>{1, 1024}, torch::kInt64).unsqueeze(0)); },
               {"token id 1024", "[0, 1024)"});
  expect_error([&] { m->forward(torch::tensor(std::vector<int64_t>{-1}, torch::kInt64).unsqueeze(0)); }, {"-1"});
}

TEST(Qwen2, Bf16ModelRunsAndStaysInBf16) {
  Qwen2ForCausalLM f32 = tiny_model(19);
  Qwen2ForCausalLM bf16 = tiny_model(19, true, DType::kBF16);
  torch::NoGradGuard no_grad;
  for (auto& p : bf16->parameters()) EXPECT_EQ(p.scalar_type(), torch::kBFloat16);
  const torch::Tensor ids = random_ids(1, 8, 1024, 20);
  const torch::Tensor lb = bf16->forward(ids);
  EXPECT_EQ(lb.scalar_type(), torch::kBFloat16);
  KVCache cache = bf16->make_cache(1, 8);
  bf16->forward(ids, &cache);
  EXPECT_EQ(cache.bytes_per_token(), f32->config().kv_cache_bytes_per_token(DType::kBF16));
}

}  // namespace
}  // namespace conductor::llm
