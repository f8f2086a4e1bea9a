// The model's linear layer, with an optional LoRA adapter in the shape of peft's LoraLayer
// (huggingface/peft, tuners/lora/layer.py):
//
//   y = x W^T + b  +  scaling * B(A(dropout(x))),   scaling = alpha / r
//
// A [r x in] starts kaiming-uniform (a = sqrt(5), as nn.Linear and peft), B [out x r] starts at zero,
// so a fresh adapter leaves the output unchanged. The adapter's parameters are children of the layer
// named lora_A.weight and lora_B.weight, so the base weight keeps its checkpoint name
// (model.layers.0.self_attn.q_proj.weight) and the adapter gets peft's
// (model.layers.0.self_attn.q_proj.lora_A.weight). Base weights are frozen (requires_grad false).
// The adapter runs in its own dtype (f32 by default, as peft's autocast_adapter_dtype) and its output
// is cast back to the layer's dtype.
//
// Adapters can be switched off (the output is then exactly the base layer's, which makes the PPO KL
// reference the same network with adapters off, no second copy of the weights), merged into the base
// weight (W += scaling * B A, for export: the adapter branch is then skipped) and unmerged again
// (exact in f32 up to rounding; in bf16 merge/unmerge round the weight, as in peft).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "llm/config.h"

namespace conductor::llm {

class Qwen2ForCausalLM;

// x W^T + b for x [..., in], W [out, in]: torch::linear, with two CPU fast paths (measured in
// docs/transformer.md), none of which changes what is computed beyond summation order:
//  - a single f32 row goes to GEMV: OpenBLAS's GEMM is ~4x slower on one row, and decoding with a KV
//    cache is all single rows;
//  - bf16 with >= 64 rows, without autograd, on a CPU lacking native bf16 dot products (AVX512-BF16):
//    the f32 GEMM on upcast copies (W a block of rows at a time), rounded back to bf16 -- 2x faster
//    than LibTorch's bf16 GEMM there.
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b = {});

// t ~ N(0, std^2) in place, drawn in f32 (chunk by chunk for other dtypes) from torch's global generator.
void fill_normal(const torch::Tensor& t, double std);

class LinearImpl : public torch::nn::Module {
 public:
  // Uninitialized weight [out x in] (and bias [out]) with `options` (dtype, device); see init_normal.
  LinearImpl(int64_t in_features, int64_t out_features, bool bias, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);

  // HF's initialization of a Linear: weight ~ N(0, std), bias 0. Draws from torch's global generator.
  void init_normal(double std);

  // Adds an adapter (rank r, alpha, dropout on the adapter input) and freezes the base weight and
  // bias. Adapter dtype: `adapter_dtype`, on the layer's device.
  void add_adapter(int64_t r, double alpha, double dropout, torch::Dtype adapter_dtype);
  bool has_adapter() const { return !lora_A.is_empty(); }
  void set_adapter_enabled(bool enabled);  // throws while merged (unmerge first)
  bool adapter_enabled() const { return adapter_enabled_; }
  void merge();    // W += scaling * B A; no-op without adapter or when merged
  void unmerge();  // W -= scaling * B A; no-op unless merged
  bool merged() const { return merged_; }
  // W with the adapter folded in (a new tensor; the layer is unchanged), or W itself when there is no
  // active unmerged adapter. What an export writes.
  torch::Tensor merged_weight() const;

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }
  void set_out_features(int64_t n) { out_features_ = n; }  // after the weight was resized (vocabulary)
  int64_t rank() const { return r_; }
  double scaling() const { return scaling_; }

  torch::Tensor weight;
  torch::Tensor bias;  // undefined when the layer has none
  torch::nn::Linear lora_A{nullptr};
  torch::nn::Linear lora_B{nullptr};

 private:
  torch::Tensor delta_weight() const;  // scaling * B A in the base weight's dtype
  int64_t in_features_, out_features_;
  int64_t r_ = 0;
  double scaling_ = 0.0, dropout_ = 0.0;
  bool adapter_enabled_ = true;
  bool merged_ = false;
};
TORCH_MODULE(Linear);

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
