// LoRA in the shape of peft's LoraLayer: training touches only adapters, merge equals unmerged,
// adapters off equals the base model bit for bit, adapter-only files round-trip under peft's names,
// and the top-K-layers option trains only the top of the stack.
#include "llm/lora.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "artifacts/safetensors.h"
#include "core/atomic_file.h"
#include "core/json_util.h"
#include "llm/hf_checkpoint.h"
#include "llm/qwen2.h"
#include "tests/llm/llm_test_util.h"

namespace conductor::llm {
namespace {

using testing::expect_error;
using testing::random_ids;
using testing::rel_err;
using testing::tiny_model;

std::map<std::string, torch::Tensor> snapshot(Qwen2ForCausalLM& m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& kv : m->named_parameters()) out[kv.key()] = kv.value().detach().clone();
  return out;
}

bool is_adapter(const std::string& name) { return name.find(".lora_") != std::string::npos; }

// One Adam step on next-token cross-entropy over a random batch.
void train_step(Qwen2ForCausalLM& m, uint64_t seed, double lr = 1e-2) {
  std::vector<torch::Tensor> params;
  for (const auto& kv : trainable_parameters(m)) params.push_back(kv.second);
  ASSERT_FALSE(params.empty());
  torch::optim::Adam opt(params, torch::optim::AdamOptions(lr));
  const torch::Tensor ids = random_ids(2, 8, m->config().vocab_size, seed);
  const torch::Tensor logits = m->forward(ids.narrow(1, 0, 7));
  const torch::Tensor loss = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}),
                                                                  ids.narrow(1, 1, 7).reshape({-1}));
  opt.zero_grad();
  loss.backward();
  opt.step();
}

TEST(Lora, AdaptersGetPeftNamesShapesAndInit) {
  Qwen2ForCausalLM m = tiny_model(1);
  LoraConfig c;
  c.r = 4;
  c.alpha = 8;
  const int64_t n = apply_lora(m, c);
  EXPECT_EQ(n, lora_parameters(m->config(), c));
  // Per layer: q (64+64)r, k (64+32)r, v (64+32)r, o (64+64)r, gate/up (64+176)r, down (176+64)r.
  EXPECT_EQ(n, 4 * 4 * (128 + 96 + 96 + 128 + 3 * 240));
  auto& q = *m->model->layer(2)->self_attn->q_proj;
  EXPECT_TRUE(q.has_adapter());
  EXPECT_DOUBLE_EQ(q.scaling(), 2.0);
  EXPECT_EQ(q.lora_A->weight.sizes(), (std::vector<int64_t>{4, 64}));
  EXPECT_EQ(q.lora_B->weight.sizes(), (std::vector<int64_t>{64, 4}));
  EXPECT_EQ(q.lora_B->weight.abs().max().item<float>(), 0.0f);
  // kaiming_uniform(a = sqrt(5)) on fan_in 64: bound = sqrt(6 / ((1 + 5) * 64)) = 1/8.
  EXPECT_LE(q.lora_A->weight.abs().max().item<float>(), 0.125f);
  EXPECT_GT(q.lora_A->weight.abs().max().item<float>(), 0.1f);
  const auto names = adapter_tensors(m);
  EXPECT_EQ(names.size(), 4u * 7u * 2u);
  EXPECT_EQ(names.front().first, "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
  for (const auto& kv : m->named_parameters()) EXPECT_EQ(kv.value().requires_grad(), is_adapter(kv.key())) << kv.key();
  expect_error([&] { apply_lora(m, c); }, {"already has a LoRA adapter"});
}

TEST(Lora, ConfigIsValidated) {
  Qwen2ForCausalLM m = tiny_model(1);
  LoraConfig c;
  c.target_modules = {"q_proj", "qkv"};
  expect_error([&] { apply_lora(m, c); }, {"unknown target module 'qkv'", "gate_proj"});
  c = LoraConfig{};
  c.r = 0;
  expect_error([&] { apply_lora(m, c); }, {"rank"});
  c = LoraConfig{};
  c.layers = {4};
  expect_error([&] { apply_lora(m, c); }, {"layer 4", "[0, 4)"});
}

TEST(Lora, AFreshAdapterChangesNothingAndATrainingStepChangesOnlyAdapters) {
  Qwen2ForCausalLM m = tiny_model(2);
  const torch::Tensor ids = random_ids(2, 6, 1024, 3);
  torch::Tensor base;
  {
    torch::NoGradGuard g;
    base = m->forward(ids);
  }
  LoraConfig c;
  c.r = 4;
  c.alpha = 8;
  c.dropout = 0.1;
  apply_lora(m, c);
  {
    torch::NoGradGuard g;
    EXPECT_TRUE(torch::equal(m->forward(ids), base));  // B = 0
  }
  const auto before = snapshot(m);
  m->train();
  train_step(m, 4);
  m->eval();
  int changed = 0;
  for (const auto& kv : m->named_parameters()) {
    const bool same = torch::equal(kv.value(), before.at(kv.key()));
    if (!is_adapter(kv.key())) {
      EXPECT_TRUE(same) << kv.key() << " is frozen but changed";
      EXPECT_FALSE(kv.value().grad().defined()) << kv.key();
    } else if (kv.key().find("lora_B") != std::string::npos) {
      EXPECT_FALSE(same) << kv.key() << " should have moved";
      changed += !same;
    }
  }
  EXPECT_EQ(changed, 4 * 7);
  torch::NoGradGuard g;
  EXPECT_FALSE(torch::equal(m->forward(ids), base));
}

TEST(Lora, DisabledAdaptersGiveTheBaseModelExactly) {
  Qwen2ForCausalLM m = tiny_model(5, /*tied=*/false);
  const torch::Tensor ids = random_ids(2, 6, 1024, 6);
  torch::Tensor base;
  {
    torch::NoGradGuard g;
    base = m->forward(ids);
  }
  LoraConfig c;
  apply_lora(m, c);
  train_step(m, 7);
  train_step(m, 8);
  torch::NoGradGuard g;
  const torch::Tensor tuned = m->forward(ids);
  set_adapters_enabled(m, false);
  EXPECT_TRUE(torch::equal(m->forward(ids), base));  // the PPO reference: same weights, adapters off
  set_adapters_enabled(m, true);
  EXPECT_TRUE(torch::equal(m->forward(ids), tuned));
  EXPECT_GT(rel_err(tuned, base), 1e-4);
}

TEST(Lora, MergeEqualsUnmergedAndUnmergeRestoresTheBase) {
  Qwen2ForCausalLM m = tiny_model(9);
  const torch::Tensor ids = random_ids(2, 6, 1024, 10);
  LoraConfig c;
  c.r = 8;
  c.alpha = 32;
  apply_lora(m, c);
  train_step(m, 11, 5e-2);
  const auto before = snapshot(m);
  torch::NoGradGuard g;
  const torch::Tensor unmerged = m->forward(ids);
  merge_adapters(m);
  EXPECT_TRUE(m->model->layer(0)->mlp->down_proj->merged());
  const torch::Tensor merged = m->forward(ids);
  EXPECT_LT(rel_err(merged, unmerged), 1e-5);
  EXPECT_GT(rel_err(m->model->layer(0)->self_attn->q_proj->weight,
                    before.at("model.layers.0.self_attn.q_proj.weight")), 1e-4);
  expect_error([&] { set_adapters_enabled(m, false); }, {"merged", "unmerge"});
  unmerge_adapters(m);
  for (const auto& kv : m->named_parameters())
    EXPECT_LT((kv.value() - before.at(kv.key())).abs().max().item<double>(), 1e-6) << kv.key();
  EXPECT_LT(rel_err(m->forward(ids), unmerged), 1e-5);  // W + BA - BA rounds in f32
}

TEST(Lora, DropoutActsInTrainingModeOnly) {
  Qwen2ForCausalLM m = tiny_model(12);
  LoraConfig c;
  c.dropout = 0.5;
  apply_lora(m, c);
  train_step(m, 13, 5e-2);  // B != 0, so the adapter branch matters
  torch::NoGradGuard g;
  const torch::Tensor ids = random_ids(1, 5, 1024, 14);
  m->eval();
  EXPECT_TRUE(torch::equal(m->forward(ids), m->forward(ids)));
  m->train();
  EXPECT_FALSE(torch::equal(m->forward(ids), m->forward(ids)));
  m->eval();
}

TEST(Lora, AdapterFilesRoundTripUnderPeftNames) {
  const std::string dir = conductor::testing::temp_dir() + "/adapter";
  Qwen2ForCausalLM m = tiny_model(15);
  LoraConfig c;
  c.r = 2;
  c.alpha = 4;
  c.target_modules = {"q_proj", "v_proj"};
  c.layers = {2, 3};
  apply_lora(m, c);
  train_step(m, 16);
  save_adapter(m, c, dir);

  const auto file = safetensors::read_file(dir + "/adapter_model.safetensors");
  EXPECT_EQ(file.tensors.size(), 2u * 2u * 2u);  // 2 layers x (q, v) x (A, B): adapters only
  EXPECT_TRUE(file.has("base_model.model.model.layers.3.self_attn.v_proj.lora_B.weight"));
  const LoraConfig back = load_lora_config(dir);
  EXPECT_EQ(back.r, 2);
  EXPECT_EQ(back.alpha, 4.0);
  EXPECT_EQ(back.target_modules, c.target_modules);
  EXPECT_EQ(back.layers, c.layers);
  const json j = parse_json(conductor::read_file(dir + "/adapter_config.json"), "adapter_config.json");
  EXPECT_EQ(j.at("peft_type"), "LORA");
  EXPECT_EQ(j.at("lora_alpha"), 4.0);

  Qwen2ForCausalLM fresh = tiny_model(15);  // same base weights
  apply_lora(fresh, back);
  load_adapter(fresh, dir);
  torch::NoGradGuard g;
  const torch::Tensor ids = random_ids(1, 6, 1024, 17);
  EXPECT_TRUE(torch::equal(fresh->forward(ids), m->forward(ids)));

  Qwen2ForCausalLM other = tiny_model(15);
  LoraConfig wider = back;
  wider.layers = {};
  apply_lora(other, wider);
  expect_error([&] { load_adapter(other, dir); }, {"adapter_model.safetensors", "'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight' is missing"});
}

TEST(Lora, MergedExportLoadsAsAPlainModelWithTheSameLogits) {
  const std::string dir = conductor::testing::temp_dir() + "/merged";
  Qwen2ForCausalLM m = tiny_model(18, /*tied=*/false);
  LoraConfig c;
  apply_lora(m, c);
  train_step(m, 19, 5e-2);
  save_hf_checkpoint(m, dir);  // adapters folded in, the model itself unchanged
  EXPECT_FALSE(m->model->layer(1)->mlp->up_proj->merged());
  Qwen2ForCausalLM plain = load_hf_checkpoint(dir);
  torch::NoGradGuard g;
  const torch::Tensor ids = random_ids(2, 5, 1024, 20);
  EXPECT_LT(rel_err(plain->forward(ids), m->forward(ids)), 1e-5);
}

// Under autograd the cache concatenates instead of writing in place, so a prefix cached at one step
// still backpropagates at the next (an episode's later steps reuse its earlier prefix in training).
TEST(Lora, KvCacheUnderAutogradMatchesTheFullForwardAndBackpropagates) {
  Qwen2ForCausalLM m = tiny_model(23);
  apply_lora(m, LoraConfig{});
  train_step(m, 24, 5e-2);
  const torch::Tensor ids = random_ids(1, 9, 1024, 25);
  KVCache cache = m->make_cache(1, 4);
  const torch::Tensor a = m->forward(ids.narrow(1, 0, 6), &cache);
  const torch::Tensor b = m->forward(ids.narrow(1, 6, 3), &cache);
  const torch::Tensor full = m->forward(ids);
  EXPECT_LT(rel_err(torch::cat({a, b}, 1), full), 1e-5);
  (b.pow(2).mean() + a.mean()).backward();
  const torch::Tensor g = m->model->layer(0)->self_attn->k_proj->lora_B->weight.grad();
  ASSERT_TRUE(g.defined());
  EXPECT_GT(g.abs().max().item<double>(), 0.0);
}

TEST(Lora, TrainTopLayersFreezesEverythingBelow) {
  Qwen2ForCausalLM m = tiny_model(21, /*tied=*/false);
  const int64_t n = train_top_layers(m, 1);
  EXPECT_EQ(n, m->config().layer_parameters() + 64);  // layer 3 and the final norm
  const auto before = snapshot(m);
  train_step(m, 22);
  for (const auto& kv : m->named_parameters()) {
    const bool top = kv.key().rfind("model.layers.3.", 0) == 0 || kv.key() == "model.norm.weight";
    const bool same = torch::equal(kv.value(), before.at(kv.key()));
    if (top && kv.key().find("bias") == std::string::npos) {
      EXPECT_FALSE(same) << kv.key();
    }
    if (!top) {
      EXPECT_TRUE(same) << kv.key();
    }
  }
  EXPECT_EQ(train_top_layers(m, 0), 0);
  EXPECT_EQ(train_top_layers(m, 1, /*train_lm_head=*/true), m->config().layer_parameters() + 64 + 1024 * 64);
  Qwen2ForCausalLM tied = tiny_model(21);
  expect_error([&] { train_top_layers(tied, 1, true); }, {"tied"});
  expect_error([&] { train_top_layers(tied, 5); }, {"5", "[0, 4]"});
}

}  // namespace
}  // namespace conductor::llm
