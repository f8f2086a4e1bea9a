// The transformer conductor (`policy.kind: transformer`, DESIGN.md section 6): a Qwen2-family decoder
// (llm/qwen2.h) that reads the conductor's state as a prompt (policies/transformer_prompt.h) and acts
// by the logits of its action tokens at the prompt's last position, restricted to the mask; a value
// head reads the same hidden state. Torch-free header: the settings and the registry entry; the
// LibTorch side is policies/transformer_model.h.
//
// The `policy` keys (docs/transformer.md):
//   model: small                 a preset (tiny | small | qwen2.5-0.5b | qwen2.5-1.5b | qwen2.5-7b), random
//                                weights, its vocabulary sized to the tokenizer; or
//   checkpoint: DIR              an HF directory (config.json + model.safetensors or shards): the base
//                                weights, referenced by path and sha256 in checkpoints, never copied
//   tokenizer: FILE              tokenizer.json (default: DIR/tokenizer.json with a checkpoint)
//   dtype: f32                   f32 | bf16 | f16 (f16 on cuda only)
//   device: cpu                  cpu | cuda | cuda:N
//   train_top_layers: 0          0 = every layer trains (or only LoRA adapters); K = only the top K
//                                decoder layers (and the final norm): the lower layers are frozen
//                                and their activations of each prompt are computed once and cached
//   frozen_cache_mb: 1024        memory for those cached activations
//   lora: {enabled: false, r: 8, alpha: 16, dropout: 0, target_modules: [q_proj, ...], layers: []}
//   max_prompt_tokens: 512
// The action tokens' input embeddings and output rows and the value head always train.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "policies/registry.h"

namespace conductor {

struct TransformerSettings : PolicySettings {
  std::string model = "small";
  std::string checkpoint;
  std::string tokenizer;
  std::string dtype = "f32";
  std::string device = "cpu";
  int train_top_layers = 0;
  int64_t frozen_cache_mb = 1024;
  bool lora = false;
  int lora_r = 8;
  double lora_alpha = 16.0;
  double lora_dropout = 0.0;
  std::vector<std::string> lora_targets = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  std::vector<int> lora_layers;
  int max_prompt_tokens = 512;

  static std::shared_ptr<const TransformerSettings> parse(ConfigReader& r);
  static TransformerSettings from_json(const json& j, const std::string& source);
  json to_json() const override;
  // The tokenizer file these settings name (tokenizer, else checkpoint/tokenizer.json).
  std::string tokenizer_path() const;
};

// The registry entry of kind "transformer" (policies/registry.cpp lists it).
PolicyKind transformer_policy_kind();

}  // namespace conductor
