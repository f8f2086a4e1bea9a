// Memory arithmetic for a Qwen2 model (weights, LoRA, optimizer states, activations, KV cache) and
// the process / machine figures to compare it with. Torch-free: `conductor model info` needs no model.
#pragma once

#include <cstdint>
#include <string>

#include "llm/config.h"

namespace conductor::llm {

struct MemoryEstimate {
  int64_t parameters = 0;
  int64_t weight_bytes = 0;         // every parameter in the weight dtype
  int64_t lora_parameters = 0;      // 0 without LoRA
  int64_t lora_bytes = 0;           // adapters in f32
  // Training with LoRA (adapters f32, base frozen): gradients and Adam's exp_avg / exp_avg_sq of the
  // adapters, in f32 (torch.optim.Adam keeps its states in the parameter's dtype).
  int64_t lora_grad_bytes = 0;
  int64_t lora_adam_bytes = 0;
  // Full fine-tuning with mixed-precision Adam as usually run (ZeRO paper, Rajbhandari et al. 2020,
  // section 3.1): besides the weights, gradients in the weight dtype and f32 master weights, momentum
  // and variance -- 12 bytes per parameter more (for f32 weights: f32 gradients, 8 bytes of Adam).
  int64_t full_grad_bytes = 0;
  int64_t full_adam_bytes = 0;  // optimizer states: f32 master copy (bf16/f16 only) + 2 x f32 moments
  int64_t kv_bytes_per_token = 0;   // one sequence, all layers, weight dtype
  // Tensors autograd keeps for the backward pass through every layer, per token of a sequence of
  // `tokens` tokens (no activation checkpointing); the attention probabilities make it grow with
  // the sequence length. An estimate: see activation_bytes_per_token().
  int64_t activation_bytes_per_token = 0;
  int64_t tokens = 0;

  int64_t inference_bytes() const { return weight_bytes + kv_bytes_per_token * tokens; }
  int64_t lora_training_bytes() const {
    return weight_bytes + lora_bytes + lora_grad_bytes + lora_adam_bytes + activation_bytes_per_token * tokens;
  }
  int64_t full_training_bytes() const {
    return weight_bytes + full_grad_bytes + full_adam_bytes + activation_bytes_per_token * tokens;
  }
};

// Bytes kept for backward per token per layer, from what llm/qwen2.cpp computes, for a sequence of
// S tokens in dtype of b bytes (H hidden, I intermediate, K = KV width, h heads):
//   b (10 H + 2 K + 5 I)   normed inputs, q/k/v before and after rotary, attention output,
//                          MLP gate / up / silu / product, residual sums
//   + 8 H                  RMSNorm's f32 intermediates (two norms)
//   + h S (4 + b)          attention scores in f32 for the softmax and the probabilities in dtype
//   + 4 (4 H + I)          with f32 LoRA adapters on a bf16/f16 model: the adapters' f32 inputs
// plus, once per token, the f32 logits and softmax of the loss (8 x vocab).
int64_t activation_bytes_per_token(const Qwen2Config& c, DType d, int64_t seq_len, bool lora_f32_inputs);

MemoryEstimate estimate_memory(const Qwen2Config& config, DType dtype, int64_t lora_parameters, int64_t tokens);

// This process: VmRSS and VmHWM of /proc/self/status (0 when unreadable).
struct ProcessMemory {
  int64_t rss_bytes = 0;
  int64_t peak_rss_bytes = 0;
};
ProcessMemory process_memory();
// Resets VmHWM to the current RSS (writes 5 to /proc/self/clear_refs); false when not permitted.
bool reset_peak_rss();

// MemTotal and MemAvailable of /proc/meminfo (0 when unreadable).
struct MachineMemory {
  int64_t total_bytes = 0;
  int64_t available_bytes = 0;
};
MachineMemory machine_memory();

// "15.23 GB", "988.1 MB", "57.3 kB": decimal units.
std::string human_bytes(int64_t bytes);

}  // namespace conductor::llm
