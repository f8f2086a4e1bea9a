// The transformer conductor (policy.kind: transformer): prompt rendering, the two compute paths
// (per-row KV caches without gradients, padded batches with them) agreeing, cached frozen layers,
// LoRA training only adapters and heads, the KL reference, save/load, and the HF-layout export.
// Tiny random models on the checked-in 1024-id tokenizer fixture: each test runs in about a second.
#include <gtest/gtest.h>
#include <unistd.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/error.h"
#include "envs/conductor_env.h"
#include "world/conductor_state.h"
#include "envs/registry.h"
#include "policies/policy_model.h"
#include "policies/registry.h"
#include "policies/transformer.h"
#include "policies/transformer_model.h"
#include "policies/transformer_prompt.h"

namespace conductor {
namespace {

namespace fs = std::filesystem;

std::string fixture_tokenizer() { return std::string(CONDUCTOR_SOURCE_DIR) + "/tests/tokenizer/fixture/tokenizer.json"; }

std::string temp_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("conductor-transformer-test-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

std::unique_ptr<VectorEnv> make_world(int num_envs, int max_steps = 3, const std::string& extra = "") {
  const std::string yaml = "synthetic: {queries: 200, seed: 5}\nsplit: train\nmax_steps: " + std::to_string(max_steps) +
                           "\nfeatures: {hash_dim: 16, ngram_max: 1}\n" + extra;
  ConfigDoc doc = ConfigDoc::load_string(yaml, "env.yaml");
  ConfigReader r = doc.root();
  auto env = make_env("conductor", r, num_envs);
  env->reset(7);
  return env;
}

std::shared_ptr<const TransformerSettings> settings(const std::string& extra = "") {
  const std::string yaml = "model: tiny\ntokenizer: " + fixture_tokenizer() + "\nmax_prompt_tokens: 384\n" + extra;
  ConfigDoc doc = ConfigDoc::load_string(yaml, "policy.yaml");
  ConfigReader r = doc.root();
  return TransformerSettings::parse(r);
}

std::unique_ptr<TransformerModel> make_model(const VectorEnv& env, const std::string& extra = "", uint64_t seed = 3) {
  torch::manual_seed(seed);
  return std::make_unique<TransformerModel>(*settings(extra), env.spec());
}

// Rolls `steps` lockstep steps with seeded random allowed actions, encoding every observation.
EncodedObs rollout(VectorEnv& env, const PolicyModel& model, int steps, std::vector<uint8_t>* masks = nullptr) {
  EncodedObs enc;
  Rng rng(19);
  const int n = env.num_envs(), A = env.spec().n_actions;
  std::vector<int32_t> actions(static_cast<std::size_t>(n));
  for (int t = 0; t < steps; ++t) {
    const ObsBatch obs = env.observations();
    model.encode(obs, enc);
    if (masks) masks->insert(masks->end(), obs.mask, obs.mask + static_cast<std::size_t>(n) * A);
    for (int i = 0; i < n; ++i) {
      std::vector<int> allowed;
      for (int a = 0; a < A; ++a)
        if (obs.mask[i * A + a]) allowed.push_back(a);
      actions[i] = allowed[rng.below(allowed.size())];
    }
    env.step(actions.data());
  }
  return enc;
}

torch::Tensor no_grad_logits(PolicyModel& m, const EncodedObs& enc) {
  torch::NoGradGuard ng;
  return m.forward(enc, row_range(0, enc.rows)).logits.clone();
}

// ---- Prompt ----

TEST(TransformerPrompt, RendersPoolQueryAndCallsAndGrowsByPrefix) {
  auto env = make_world(1, 3);
  auto model = make_model(*env);
  const ConductorPrompt& prompt = *model->core()->prompt;
  const std::string first = prompt.text(env->state_views()[0]);
  EXPECT_NE(first.find("<|im_start|>system\n"), std::string::npos) << first;
  EXPECT_NE(first.find("Workers available"), std::string::npos) << first;
  EXPECT_NE(first.find(env->state_views()[0].task), std::string::npos) << first;
  for (const auto& name : env->spec().action_names)
    if (name.rfind("call:", 0) == 0) EXPECT_NE(first.find("<" + name + ">"), std::string::npos) << name;
  const PromptTokens t0 = prompt.render(env->state_views()[0]);
  // Call the cheapest-listed worker: the next prompt extends the first by one call line.
  const int32_t call0 = 0;
  ASSERT_EQ(env->spec().action_names[0].rfind("call:", 0), 0u);
  env->step(&call0);
  const PromptTokens t1 = prompt.render(env->state_views()[0]);
  ASSERT_GT(t1.ids.size(), t0.ids.size());
  EXPECT_TRUE(std::equal(t0.ids.begin(), t0.ids.end(), t1.ids.begin()));
  EXPECT_EQ(t1.part_ends.size(), t0.part_ends.size() + 1);
  const std::string second = prompt.text(env->state_views()[0]);
  EXPECT_NE(second.find("USD"), std::string::npos) << second;
  EXPECT_FALSE(t1.truncated);
}

ConductorStateView with_query(const ConductorStateView& s, const std::string& text) {
  ConductorStateView v = s;
  v.text = text;
  return v;
}

TEST(TransformerPrompt, LongEmptyAndInvalidQueriesAreHandled) {
  auto env = make_world(1, 3);
  auto model = make_model(*env);
  const ConductorPrompt& prompt = *model->core()->prompt;
  const ConductorStateView s = env->state_views()[0];
  // 1 MB of text: head and tail kept, the counter says so, the length bound holds.
  std::string huge = "HEADWORDS begin here. ";
  while (huge.size() < (1u << 20)) huge += "lorem ipsum dolor sit amet ";
  huge += " TAILWORDS end here.";
  const PromptTokens big = prompt.render(with_query(s, huge));
  EXPECT_TRUE(big.truncated);
  EXPECT_LE(static_cast<int>(big.ids.size()), prompt.max_prompt_tokens() - prompt.max_steps() * ConductorPrompt::kStepReserve);
  const std::string text = prompt.tokenizer().decode(big.ids);
  EXPECT_NE(text.find("HEADWORDS"), std::string::npos);
  EXPECT_NE(text.find("TAILWORDS"), std::string::npos);
  EXPECT_NE(text.find(" ... "), std::string::npos);
  int64_t before = model->truncated_prompts();
  EncodedObs enc;
  ConductorStateView hv = with_query(s, huge);
  ObsBatch b = env->observations();
  b.states = &hv;
  model->encode(b, enc);
  EXPECT_EQ(model->truncated_prompts(), before + 1);
  // Empty query: a prompt all the same, not an error.
  const PromptTokens empty = prompt.render(with_query(s, ""));
  EXPECT_FALSE(empty.truncated);
  EXPECT_GT(empty.ids.size(), 10u);
  // Invalid UTF-8 becomes U+FFFD.
  const PromptTokens bad = prompt.render(with_query(s, std::string("caf\xC3 \xFF\xFE ok")));
  EXPECT_NE(prompt.tokenizer().decode(bad.ids).find("\xEF\xBF\xBD"), std::string::npos);
}

TEST(TransformerPrompt, RefusesActionNamesThatCannotBeTokens) {
  auto tok = std::make_shared<BpeTokenizer>(BpeTokenizer::load(fixture_tokenizer()));
  try {
    ConductorPrompt p(tok, {"call:a", "jump:b"}, 3, 256);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("jump:b"), std::string::npos) << e.what();
  }
  try {
    ConductorPrompt p(tok, {"call:has space"}, 3, 256);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has space"), std::string::npos) << e.what();
  }
}

TEST(TransformerSettings, BadKeysNameTheKey) {
  auto expect_error = [](const std::string& yaml, const std::string& needle) {
    ConfigDoc doc = ConfigDoc::load_string(yaml, "policy.yaml");
    ConfigReader r = doc.root();
    try {
      TransformerSettings::parse(r);
      FAIL() << "no error for " << yaml;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error("model: gpt9\ntokenizer: " + fixture_tokenizer() + "\n", "model");
  expect_error("model: tiny\n", "tokenizer");
  expect_error("model: tiny\ntokenizer: /nonexistent/tok.json\n", "/nonexistent/tok.json");
  expect_error("model: tiny\ntokenizer: " + fixture_tokenizer() + "\nlora: {enabled: true, target_modules: [qq]}\n",
               "qq");
  expect_error("model: tiny\ntokenizer: " + fixture_tokenizer() + "\ndtype: f8\n", "dtype");
}

TEST(TransformerSettings, PathsBecomeAbsoluteSoCheckpointsLoadFromAnywhere) {
  const fs::path rel = fs::relative(fixture_tokenizer(), fs::current_path());
  ASSERT_TRUE(rel.is_relative());
  ConfigDoc doc = ConfigDoc::load_string("model: tiny\ntokenizer: " + rel.string() + "\n", "policy.yaml");
  ConfigReader r = doc.root();
  const auto s = TransformerSettings::parse(r);
  EXPECT_TRUE(fs::path(s->tokenizer).is_absolute()) << s->tokenizer;
  EXPECT_TRUE(fs::equivalent(s->tokenizer, fixture_tokenizer()));
}

// ---- Compute paths ----

TEST(TransformerModel, CachedNoGradPathEqualsBatchedGradPath) {
  for (const std::string extra : {"", "train_top_layers: 2\n"}) {
    SCOPED_TRACE(extra);
    auto env = make_world(3, 3);
    auto model = make_model(*env, extra);
    // Make the action rows non-zero so the logits carry the hidden states.
    {
      torch::NoGradGuard ng;
      model->core()->action_head.normal_(0.0, 1.0);
    }
    const EncodedObs enc = rollout(*env, *model, 5);
    ASSERT_EQ(enc.rows, 15);
    const torch::Tensor cached = no_grad_logits(*model, enc);  // per row, KV reuse across steps
    EXPECT_GT(model->caches().kv_reuse_tokens.load(), 0);
    const PolicyOutput grad = model->forward(enc, row_range(0, enc.rows));
    ASSERT_TRUE(grad.logits.requires_grad());
    EXPECT_TRUE(torch::allclose(cached, grad.logits.detach(), 1e-4, 1e-5))
        << (cached - grad.logits.detach()).abs().max().item<float>();
    // A cold model (no caches) gives the same logits row by row.
    torch::Tensor cold;
    {
      auto fresh = std::make_unique<TransformerModel>(model->core());
      cold = no_grad_logits(*fresh, enc);
    }
    EXPECT_TRUE(torch::allclose(cached, cold, 1e-5, 1e-6));
    if (!extra.empty()) EXPECT_GT(model->caches().lower_hits.load(), 0);
  }
}

TEST(TransformerModel, InferencePolicyMasksExactlyAndIsSeeded) {
  auto env = make_world(4, 3);
  auto model = make_model(*env);
  {
    torch::NoGradGuard ng;
    model->core()->action_head.normal_(0.0, 1.0);
  }
  auto policy = model->inference_policy();
  const ObsBatch obs = env->observations();
  const int A = obs.n_actions;
  std::vector<int32_t> a1(4), a2(4);
  std::vector<float> p(static_cast<std::size_t>(4 * A));
  ActOptions o;
  o.seed = 5;
  policy->act(obs, o, a1.data(), p.data());
  policy->act(obs, o, a2.data(), nullptr);
  EXPECT_EQ(a1, a2);
  for (int i = 0; i < 4; ++i) {
    double sum = 0;
    for (int a = 0; a < A; ++a) {
      if (!obs.mask[i * A + a]) EXPECT_EQ(p[i * A + a], 0.0f);
      sum += p[i * A + a];
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
    EXPECT_TRUE(obs.mask[i * A + a1[i]]);
  }
}

std::map<std::string, torch::Tensor> snapshot(TransformerModel& m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : m.core()->lm->named_parameters()) out[p.key()] = p.value().detach().clone();
  out["policy.action_embed"] = m.core()->action_embed.detach().clone();
  out["policy.action_head"] = m.core()->action_head.detach().clone();
  out["policy.value_head.weight"] = m.core()->value_head->weight.detach().clone();
  return out;
}

// One Adam step on a loss that reads logits and values of a rolled-out batch.
void train_step(TransformerModel& m, const EncodedObs& enc) {
  torch::optim::Adam opt(m.parameters(), torch::optim::AdamOptions(1e-2));
  const PolicyOutput out = m.forward(enc, row_range(0, enc.rows));
  const torch::Tensor loss = -torch::log_softmax(out.logits, -1).select(1, 0).mean() + out.value.pow(2).mean();
  opt.zero_grad();
  loss.backward();
  opt.step();
}

TEST(TransformerModel, LoraStepChangesOnlyAdaptersAndHeadsAndReferenceStays) {
  auto env = make_world(3, 3);
  auto model = make_model(*env, "lora: {enabled: true, r: 4, alpha: 8, target_modules: [q_proj, v_proj, down_proj]}\n");
  const EncodedObs enc = rollout(*env, *model, 4);
  auto reference = model->frozen_copy();
  const torch::Tensor ref_before = no_grad_logits(*reference, enc);
  const torch::Tensor before_logits = no_grad_logits(*model, enc);
  const auto before = snapshot(*model);
  train_step(*model, enc);
  const auto after = snapshot(*model);
  int changed_adapters = 0;
  for (const auto& [name, t] : before) {
    const bool changed = !torch::equal(t, after.at(name));
    const bool adapter = name.find("lora_") != std::string::npos;
    const bool head = name.rfind("policy.", 0) == 0;
    if (adapter) {
      changed_adapters += changed;
    } else if (!head) {
      EXPECT_FALSE(changed) << name << " is a base weight and changed";
    }
  }
  EXPECT_GT(changed_adapters, 0);
  EXPECT_FALSE(torch::equal(before.at("policy.action_head"), after.at("policy.action_head")));
  EXPECT_FALSE(torch::equal(before.at("policy.value_head.weight"), after.at("policy.value_head.weight")));
  // The trained model's cached path sees the new weights (its caches were dropped) ...
  const torch::Tensor after_cached = no_grad_logits(*model, enc);
  const torch::Tensor after_grad = model->forward(enc, row_range(0, enc.rows)).logits.detach();
  EXPECT_TRUE(torch::allclose(after_cached, after_grad, 1e-4, 1e-5));
  EXPECT_FALSE(torch::allclose(after_cached, before_logits, 1e-4, 1e-5));
  // ... and the reference (the same network, adapters off, its own heads) did not move.
  EXPECT_TRUE(torch::allclose(no_grad_logits(*reference, enc), ref_before, 1e-6, 1e-7));
}

TEST(TransformerModel, TopLayersTrainAloneAndLowerCacheIsReused) {
  auto env = make_world(3, 3);
  auto model = make_model(*env, "train_top_layers: 1\n");
  const EncodedObs enc = rollout(*env, *model, 4);
  no_grad_logits(*model, enc);  // fills the lower-layer cache
  const int64_t misses = model->caches().lower_misses.load();
  const auto before = snapshot(*model);
  train_step(*model, enc);
  train_step(*model, enc);
  EXPECT_EQ(model->caches().lower_misses.load(), misses) << "the update recomputed frozen layers";
  const auto after = snapshot(*model);
  for (const auto& [name, t] : before) {
    const bool top = name.find("layers.3.") != std::string::npos || name == "model.norm.weight";
    const bool changed = !torch::equal(t, after.at(name));
    if (name == "policy.action_embed") {
      EXPECT_FALSE(changed) << "action inputs feed the cached layers";
    } else if (top || name == "policy.action_head" || name == "policy.value_head.weight") {
      EXPECT_TRUE(changed) << name;
    } else {
      EXPECT_FALSE(changed) << name;
    }
  }
}

// ---- Save, load, export ----

TEST(TransformerModel, SaveLoadRoundTripAndMismatchErrors) {
  auto env = make_world(2, 3);
  auto model = make_model(*env, "lora: {enabled: true, r: 2}\n");
  const EncodedObs enc = rollout(*env, *model, 3);
  train_step(*model, enc);
  const std::string dir = temp_dir("save");
  model->save(dir);
  auto other = make_model(*env, "lora: {enabled: true, r: 2}\n", 99);
  EXPECT_FALSE(torch::allclose(no_grad_logits(*other, enc), no_grad_logits(*model, enc)));
  other->load(dir);
  EXPECT_TRUE(torch::allclose(no_grad_logits(*other, enc), no_grad_logits(*model, enc), 1e-6, 1e-7));
  auto different = make_model(*env, "lora: {enabled: true, r: 4}\n");
  try {
    different->load(dir);
    FAIL() << "loaded a checkpoint of other settings";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("policy.json"), std::string::npos) << e.what();
  }
  // The inference policy of the checkpoint folder acts as the model does.
  auto loaded = policy_kind("transformer", "test").load_checkpoint(dir);
  EXPECT_EQ(loaded->kind(), "transformer");
  fs::remove_all(dir);
}

TEST(TransformerModel, MergedHfExportGivesTheSameDistribution) {
  auto env = make_world(3, 3);
  auto model = make_model(*env, "lora: {enabled: true, r: 4, alpha: 8}\n");
  const EncodedObs enc = rollout(*env, *model, 3);
  for (int i = 0; i < 3; ++i) train_step(*model, enc);
  const std::string ckpt = temp_dir("ckpt");
  model->save(ckpt);
  const ExportedPolicy e = policy_kind("transformer", "test").export_policy(ckpt);
  const std::string out = temp_dir("export");
  for (const auto& f : e.files) {
    if (f.path.empty()) write_file_atomic(out + "/" + f.name, f.bytes);
    else fs::rename(f.path, out + "/" + f.name);
  }
  // HF layout: the architecture, untied head with the action rows, the tokenizer with the actions.
  const json cfg = parse_json(read_file(out + "/config.json"), "config.json");
  EXPECT_EQ(cfg.at("architectures").at(0), "Qwen2ForCausalLM");
  EXPECT_EQ(cfg.at("tie_word_embeddings"), false);
  const std::string tok = read_file(out + "/tokenizer.json");
  EXPECT_NE(tok.find("<" + env->spec().action_names[0] + ">"), std::string::npos);
  auto exported = policy_kind("transformer", "test").load_export(out, e.config);
  auto live = model->inference_policy();
  // Same states, same probabilities.
  auto env2 = make_world(3, 3);
  const int A = env2->spec().n_actions;
  Rng rng(4);
  for (int t = 0; t < 3; ++t) {
    const ObsBatch obs = env2->observations();
    std::vector<float> p1(static_cast<std::size_t>(3 * A)), p2(p1.size());
    std::vector<int32_t> a1(3), a2(3);
    live->act(obs, ActOptions{}, a1.data(), p1.data());
    exported->act(obs, ActOptions{}, a2.data(), p2.data());
    for (std::size_t k = 0; k < p1.size(); ++k) EXPECT_NEAR(p1[k], p2[k], 1e-5) << k;
    env2->step(a1.data());
  }
  fs::remove_all(ckpt);
  fs::remove_all(out);
}

TEST(TransformerModel, RefusesCheckpointOfAnotherArchitecture) {
  const std::string dir = temp_dir("llama");
  write_file_atomic(dir + "/config.json",
                    R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64})");
  write_file_atomic(dir + "/tokenizer.json", read_file(fixture_tokenizer()));
  const std::string yaml = "checkpoint: " + dir + "\n";
  ConfigDoc doc = ConfigDoc::load_string(yaml, "policy.yaml");
  ConfigReader r = doc.root();
  auto s = TransformerSettings::parse(r);
  auto env = make_world(1, 3);
  try {
    TransformerModel m(*s, env->spec());
    FAIL() << "built a Qwen2 model from a Llama config";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("LlamaForCausalLM"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace conductor
