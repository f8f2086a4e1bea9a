// The transformer policy kind's export (an HF checkpoint directory with the action tokens' rows and
// the value head), loading an export, and the kind's registry entry. Split from
// transformer_model.cpp along its sections; the model itself is there.
#include "policies/transformer_model.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <set>

#include "artifacts/sha256.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/json_util.h"
#include "core/random.h"
#include "llm/hf_checkpoint.h"
#include "llm/lora.h"
#include "llm/torch_compat.h"

namespace conductor {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Export in HF layout

namespace {

constexpr const char* kValueHead = "value_head.safetensors";

// An export directory is itself the policy's base: an HF checkpoint (config.json, model.safetensors,
// tokenizer.json with the action tokens) whose action-token rows are the policy's, plus the value head.
ExportedPolicy export_transformer(const std::string& checkpoint_dir) {
  auto core = load_transformer_checkpoint(checkpoint_dir);
  TransformerCore& c = *core;
  torch::NoGradGuard ng;
  if (c.settings.lora) llm::merge_adapters(c.lm);
  llm::Qwen2Config cfg = c.lm->config();
  const int64_t V = std::max<int64_t>(cfg.vocab_size, c.tokenizer->vocab_size());
  const auto& ids = c.prompt->action_token_ids();
  const torch::Tensor id_t = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kInt64).to(c.lm->device());
  const torch::Tensor E0 = c.lm->model->embed_tokens->weight;
  auto resized = [&](const torch::Tensor& w) {
    return w.size(0) >= V ? w.clone() : torch::cat({w, torch::zeros({V - w.size(0), w.size(1)}, w.options())}, 0);
  };
  torch::Tensor E = resized(E0);
  E.index_copy_(0, id_t, c.action_embed.to(E.scalar_type()));
  torch::Tensor head = resized(cfg.tie_word_embeddings ? E0 : c.lm->lm_head->weight);
  head.index_copy_(0, id_t, c.action_head.to(head.scalar_type()));
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto& [name, t] : llm::hf_named_weights(c.lm)) {
    if (name == "model.embed_tokens.weight") tensors.emplace_back(name, E);
    else if (name != "lm_head.weight") tensors.emplace_back(name, t);
  }
  tensors.emplace_back("lm_head.weight", head);
  cfg.vocab_size = V;
  cfg.tie_word_embeddings = false;  // the action tokens' input and output rows differ
  cfg.torch_dtype = c.lm->dtype();
  const fs::path tmp = fs::temp_directory_path() /
                       ("conductor-export-" + std::to_string(::getpid()) + "-" + std::to_string(reinterpret_cast<uintptr_t>(&c)));
  fs::create_directories(tmp);
  llm::write_tensors((tmp / "model.safetensors").string(), tensors, std::nullopt);
  llm::write_tensors((tmp / kValueHead).string(),
                     {{"value_head.weight", c.value_head->weight}, {"value_head.bias", c.value_head->bias}}, std::nullopt);
  ExportedPolicy e;
  TransformerSettings s = c.settings;
  s.checkpoint = ".";  // the export directory itself
  s.tokenizer = "";
  s.lora = false;      // merged
  s.train_top_layers = 0;
  e.config = {{"settings", s.to_json()},
              {"action_names", c.action_names},
              {"action_tokens", c.prompt->action_tokens()},
              {"max_steps", c.prompt->max_steps()},
              {"value_head", kValueHead},
              {"base_sha256", c.base_sha256}};
  e.files.push_back({"model.safetensors", "", (tmp / "model.safetensors").string()});
  e.files.push_back({"config.json", cfg.to_json().dump(2) + "\n", ""});
  e.files.push_back({"tokenizer.json", c.tokenizer ? tokenizer_json_text(c.tokenizer->spec()) : "", ""});
  e.files.push_back({kValueHead, "", (tmp / kValueHead).string()});
  return e;
}

std::unique_ptr<Policy> load_transformer_export(const std::string& dir, const json& config) {
  const std::string where = dir + "/manifest.json: policy.config";
  TransformerSettings s;
  std::vector<std::string> actions;
  int max_steps = 1;
  try {
    s = TransformerSettings::from_json(config.at("settings"), where);
    actions = config.at("action_names").get<std::vector<std::string>>();
    max_steps = config.at("max_steps").get<int>();
  } catch (const json::exception& e) {
    fail(where, ": ", e.what());
  }
  s.checkpoint = dir;
  s.tokenizer = (fs::path(dir) / "tokenizer.json").string();
  auto core = std::make_shared<TransformerCore>();
  core->settings = s;
  core->action_names = actions;
  core->tokenizer = std::make_shared<BpeTokenizer>(BpeTokenizer::load(s.tokenizer));
  core->prompt = std::make_shared<ConductorPrompt>(core->tokenizer, actions, max_steps, s.max_prompt_tokens);
  core->lm = llm::load_hf_checkpoint(dir, {llm::parse_dtype(s.dtype), llm::parse_device(s.device)});
  torch::NoGradGuard ng;
  const auto& ids = core->prompt->action_token_ids();
  const torch::Tensor id_t =
      torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kInt64).to(core->lm->device());
  core->action_embed = core->lm->model->embed_tokens->weight.index_select(0, id_t);
  core->action_head = core->lm->lm_head->weight.index_select(0, id_t).to(torch::kFloat32);
  const int64_t H = core->lm->config().hidden_size;
  core->value_head = torch::nn::Linear(H, 1);
  core->value_head->to(core->lm->device());
  const safetensors::MappedFile vh((fs::path(dir) / kValueHead).string());
  llm::copy_tensor(core->value_head->weight, vh, "value_head.weight");
  llm::copy_tensor(core->value_head->bias, vh, "value_head.bias");
  std::vector<int64_t> of(static_cast<std::size_t>(core->tokenizer->vocab_size()), -1);
  for (std::size_t a = 0; a < ids.size(); ++a) of[static_cast<std::size_t>(ids[a])] = static_cast<int64_t>(a);
  core->action_of_token = torch::tensor(of, torch::kInt64).to(core->lm->device());
  for (auto& p : core->lm->parameters()) p.requires_grad_(false);
  return make_transformer_policy(core);
}

}  // namespace

PolicyKind transformer_policy_kind() {
  PolicyKind k;
  k.kind = "transformer";
  k.parse = [](ConfigReader& r) -> std::shared_ptr<const PolicySettings> { return TransformerSettings::parse(r); };
  k.make_model = [](const PolicySettings& s, const EnvSpec& env) -> std::unique_ptr<PolicyModel> {
    return std::make_unique<TransformerModel>(static_cast<const TransformerSettings&>(s), env);
  };
  k.load_checkpoint = [](const std::string& dir) -> std::unique_ptr<Policy> {
    return make_transformer_policy(load_transformer_checkpoint(dir));
  };
  k.export_policy = export_transformer;
  k.load_export = load_transformer_export;
  return k;
}

}  // namespace conductor
