// LoRA over the model's linear layers (llm/linear.h holds the layer and its adapter, in the shape of
// peft's LoraLayer): which layers get adapters (LoraConfig, peft's names), applying, switching,
// merging and saving them for a whole model, and training only the top layers.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "llm/config.h"
#include "llm/linear.h"

namespace conductor::llm {

class Qwen2ForCausalLM;

// peft's LoraConfig, the parts that matter here.
struct LoraConfig {
  int64_t r = 8;            // rank
  double alpha = 16.0;      // scaling = alpha / r
  double dropout = 0.0;     // on the adapter input, in training mode only
  // Which linear layers get adapters, by module name (the last component of the parameter path).
  std::vector<std::string> target_modules = {"q_proj", "k_proj", "v_proj", "o_proj",
                                             "gate_proj", "up_proj", "down_proj"};
  // Decoder layers that get adapters (peft's layers_to_transform); empty = every layer.
  std::vector<int64_t> layers;
  torch::Dtype adapter_dtype = torch::kFloat32;

  double scaling() const { return alpha / static_cast<double>(r); }
  // Throws for r < 1, alpha <= 0, dropout outside [0, 1), an unknown target name or a layer index
  // outside [0, num_layers).
  void validate(int64_t num_layers) const;
  json to_peft_json() const;  // adapter_config.json as peft writes it
};

// Module names LoRA can target (every linear layer of a decoder layer).
const std::vector<std::string>& lora_target_names();

// Adds adapters to the targeted layers and freezes every base parameter of the model (embeddings,
// norms, lm_head included): afterwards only lora_A / lora_B weights require grad. Returns the number
// of adapter parameters. Throws if the model already has adapters.
int64_t apply_lora(Qwen2ForCausalLM& model, const LoraConfig& config);
// Number of trainable adapter parameters and their bytes for a config, without a model.
int64_t lora_parameters(const Qwen2Config& model, const LoraConfig& config);

void set_adapters_enabled(Qwen2ForCausalLM& model, bool enabled);
void merge_adapters(Qwen2ForCausalLM& model);
void unmerge_adapters(Qwen2ForCausalLM& model);

// The adapter tensors by peft's names ("base_model.model." + module path + ".lora_A.weight").
std::vector<std::pair<std::string, torch::Tensor>> adapter_tensors(Qwen2ForCausalLM& model);
// A peft adapter directory: adapter_model.safetensors (adapter tensors only, F32 or the adapter dtype)
// and adapter_config.json. Written atomically (temporary directory renamed into place).
void save_adapter(Qwen2ForCausalLM& model, const LoraConfig& config, const std::string& dir);
// Loads adapter tensors saved by save_adapter into a model that has the same adapters (apply_lora
// with the same config); every missing, extra or mis-shaped tensor is an error naming it.
void load_adapter(Qwen2ForCausalLM& model, const std::string& dir);
// Reads adapter_config.json of an adapter directory.
LoraConfig load_lora_config(const std::string& dir);

// Full fine-tuning of the top `top_layers` decoder layers only: every parameter below them (the
// embedding, hence a tied lm_head, and the lower layers) is frozen; the top layers and the final
// norm (when top_layers > 0) stay trainable, and an untied lm_head only if `train_lm_head`; 0 freezes
// the whole model. With LoRA applied, combine
// with LoraConfig::layers instead. Returns the number of trainable parameters.
int64_t train_top_layers(Qwen2ForCausalLM& model, int64_t top_layers, bool train_lm_head = false);

// Parameters with requires_grad, by name.
std::vector<std::pair<std::string, torch::Tensor>> trainable_parameters(Qwen2ForCausalLM& model);

}  // namespace conductor::llm
