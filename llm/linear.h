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

#include <cstdint>

namespace conductor::llm {

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

}  // namespace conductor::llm
