// A Qwen2-family decoder-only language model in LibTorch, in the order the math runs.
//
//   h = embed_tokens[input_ids]
//   for each layer:  h = h + o_proj(attention(rope(q_proj(rms(h))), rope(k_proj(rms(h))), v_proj(rms(h))))
//                    h = h + down_proj(silu(gate_proj(rms(h))) * up_proj(rms(h)))
//   hidden = norm(h);  logits = hidden @ W^T   (W = lm_head.weight, or embed_tokens.weight when tied)
//
// Module and parameter names are the HF checkpoint's tensor names (model.embed_tokens.weight,
// model.layers.N.self_attn.q_proj.weight, ..., lm_head.weight), so loading is a name table
// (llm/hf_checkpoint.h). What follows transformers' modeling_qwen2.py exactly:
//  - RMSNorm computes in f32 and casts back before the weight multiply: w * (x / rms(x)).to(dtype);
//  - rotary embeddings in the rotate-half convention, inv_freq = theta^(-2i/d) in f32, cos/sin cast
//    to the model dtype;
//  - grouped-query attention: query head h reads KV head h / (heads / kv_heads); softmax in f32 then
//    cast back; scores scaled by 1/sqrt(head_dim);
//  - q/k/v projections have biases, o_proj and the MLP none.
// What differs (same math, less memory traffic): attention is llm/torch_compat.h's compat::attention,
// at::scaled_dot_product_attention on LibTorch >= 2.5 (the fused kernels; its causal path for a fresh
// sequence), else matmul + f32 softmax; either way the g query heads that share a KV head read it as
// one matrix of g*T rows (or through enable_gqa) instead of copying K and V g times (repeat_kv);
// cos/sin and the causal mask are built once per call, not per layer; without autograd (inference)
// the element-wise steps reuse their buffers in place.
//
// Positions: a call processes tokens at positions start, start+1, ..., start+T-1 for every sequence
// of the batch (start = the KV cache's length, or 0 without one). Causal attention: a token attends
// to itself and earlier positions only, so right-padded batches give every sequence's real tokens
// the same hidden states as running it alone (padding is never attended to by real tokens).
// Left padding is not supported.
//
// Device and dtype: every tensor is created with options derived from the model's parameters;
// nothing assumes CPU. LibTorch 1.13's CPU kernels have no f16 matmul: an f16 model must live on a
// CUDA device (f16 checkpoints load into f32 or bf16 models on the CPU).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "llm/config.h"
#include "llm/linear.h"

namespace conductor::llm {

torch::Dtype to_torch(DType d);
DType from_torch(torch::Dtype d);
// "cpu", "cuda", "cuda:N"; throws conductor::Error when CUDA is asked for and not available.
torch::Device parse_device(const std::string& s);
// Throws conductor::Error for a dtype the device cannot compute in (f16 on CPU).
void check_compute_dtype(const torch::Device& device, DType dtype);

// ---- KV cache ----

// Keys and values of every layer for a batch of sequences that share one length, preallocated to a
// capacity (grown by doubling when exceeded). Layers advance independently, so a caller that runs a
// range of layers (forward_layers) keeps a consistent cache for that range. Without autograd new
// tokens are written in place; when K/V require grad (training through the cache) they are
// concatenated into new tensors instead, so that earlier steps' saved tensors stay intact for the
// backward pass. A batch shares one length: right-padded sequences of different lengths must not
// continue through one cache (their padding would be attended to); run them one per cache.
class KVCache {
 public:
  KVCache(const Qwen2Config& config, int64_t batch, int64_t capacity, const torch::TensorOptions& options);

  int64_t batch() const { return batch_; }
  int64_t capacity() const { return capacity_; }
  int64_t length(int64_t layer = 0) const { return lengths_.at(layer); }
  int64_t num_layers() const { return static_cast<int64_t>(lengths_.size()); }

  // Stores k, v [B, kv_heads, T, head_dim] at positions [length(layer), length(layer) + T) and
  // returns views of everything cached for the layer, [B, kv_heads, length + T, head_dim].
  std::pair<torch::Tensor, torch::Tensor> append(int64_t layer, const torch::Tensor& k, const torch::Tensor& v);
  // Keeps the first n tokens of every layer (n <= length): to rewind to a shared prefix.
  void truncate(int64_t n);
  // A deep copy (same capacity), e.g. to branch an episode from a shared prefix.
  KVCache copy() const;

  // Bytes of K and V of one token of one sequence (all layers).
  int64_t bytes_per_token() const;
  // Bytes allocated (the capacity of the whole batch).
  int64_t bytes_allocated() const;

 private:
  void grow(int64_t min_capacity);
  int64_t batch_, capacity_, kv_heads_, head_dim_;
  std::vector<torch::Tensor> keys_, values_;  // [B, kv_heads, capacity, head_dim] per layer
  std::vector<int64_t> lengths_;
};

// ---- Modules ----

class EmbeddingImpl : public torch::nn::Module {
 public:
  EmbeddingImpl(int64_t num_embeddings, int64_t dim, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& ids);
  torch::Tensor weight;  // [vocab, hidden]
};
TORCH_MODULE(Embedding);

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;  // [hidden], initialized to ones
  double eps;
};
TORCH_MODULE(RMSNorm);

// What every layer of one call shares: the tokens' positions start .. start+T-1, their rotary cos and
// sin [T, head_dim] in the model dtype, and the keys each query must not see (bool [T, S] for S keys,
// true = hidden; undefined when a single query sees every key).
struct Positions {
  int64_t start = 0;
  torch::Tensor cos, sin_signed;  // sin_signed: sin with its first half negated (see apply_rotary)
  torch::Tensor hidden_keys;
};
// Angles as transformers computes them: inv_freq = 1 / theta^(arange(0, d, 2) / d) in f32, angle =
// position * inv_freq, duplicated over both halves; cos/sin cast to the dtype of `options`.
// `keys` = the number of keys the queries attend to (cached prefix + T).
Positions make_positions(const Qwen2Config& config, int64_t start, int64_t T, int64_t keys,
                         const torch::TensorOptions& options);
// x [B, heads, T, head_dim]: x * cos + rotate_half(x) * sin with rotate_half(x) = cat(-x2, x1),
// computed as x * cos + cat(x2, x1) * sin_signed (the same products: negating is exact).
torch::Tensor apply_rotary(const torch::Tensor& x, const Positions& p);

class Qwen2AttentionImpl : public torch::nn::Module {
 public:
  Qwen2AttentionImpl(const Qwen2Config& config, const torch::TensorOptions& options);
  // x [B, T, hidden] at positions start..start+T-1; with a cache, attends to the cached prefix too.
  torch::Tensor forward(const torch::Tensor& x, const Positions& pos, KVCache* cache, int64_t layer);
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};

 private:
  int64_t heads_, kv_heads_, head_dim_;
};
TORCH_MODULE(Qwen2Attention);

class Qwen2MLPImpl : public torch::nn::Module {
 public:
  Qwen2MLPImpl(const Qwen2Config& config, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);  // down(silu(gate(x)) * up(x))
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Qwen2MLP);

class Qwen2DecoderLayerImpl : public torch::nn::Module {
 public:
  Qwen2DecoderLayerImpl(const Qwen2Config& config, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& h, const Positions& pos, KVCache* cache, int64_t layer);
  Qwen2Attention self_attn{nullptr};
  Qwen2MLP mlp{nullptr};
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(Qwen2DecoderLayer);

// The decoder stack: the HF "model." prefix.
class Qwen2ModelImpl : public torch::nn::Module {
 public:
  Qwen2ModelImpl(const Qwen2Config& config, const torch::TensorOptions& options);
  Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
  Qwen2DecoderLayer layer(int64_t i) { return Qwen2DecoderLayer(layers->ptr<Qwen2DecoderLayerImpl>(i)); }
};
TORCH_MODULE(Qwen2Model);

enum class Init {
  kRandom,         // HF's _init_weights: linear and embedding ~ N(0, initializer_range), biases 0, norms 1
  kUninitialized,  // torch::empty: for loading a checkpoint right after (no time spent drawing numbers)
};

class Qwen2ForCausalLMImpl : public torch::nn::Module {
 public:
  // Parameters are created directly in `dtype` on `device` (no f32 CPU copy first).
  Qwen2ForCausalLMImpl(const Qwen2Config& config, DType dtype = DType::kF32,
                       const torch::Device& device = torch::kCPU, Init init = Init::kRandom);

  // Token embeddings [B, T, hidden] of input_ids [B, T] (int64).
  torch::Tensor embed(const torch::Tensor& input_ids);
  // Runs decoder layers [first, last) on hidden [B, T, hidden] at positions start..start+T-1 (with a
  // cache, start must equal the cache's length for layer `first`). Not normed.
  torch::Tensor forward_layers(const torch::Tensor& hidden, int64_t first, int64_t last, int64_t start,
                               KVCache* cache = nullptr);
  // The final RMSNorm.
  torch::Tensor final_norm(const torch::Tensor& hidden);
  // embed -> every layer -> final norm: hidden states [B, T, hidden]. With a cache, the tokens
  // continue the cached prefix (positions from the cache's length) and are appended to it.
  torch::Tensor forward_hidden(const torch::Tensor& input_ids, KVCache* cache = nullptr);
  // Logits over the whole vocabulary [..., vocab] in the model dtype.
  torch::Tensor lm_logits(const torch::Tensor& hidden);
  // Logits of some vocabulary rows only, hidden @ W[rows]^T: [..., rows.size(0)] (rows: int64).
  torch::Tensor lm_logits(const torch::Tensor& hidden, const torch::Tensor& rows);
  // forward_hidden then lm_logits.
  torch::Tensor forward(const torch::Tensor& input_ids, KVCache* cache = nullptr);

  // The output projection's weight: lm_head.weight, or embed_tokens.weight when tied.
  torch::Tensor head_weight();
  // A cache for `batch` sequences with room for `capacity` tokens, on the model's device and dtype.
  KVCache make_cache(int64_t batch, int64_t capacity);

  // Appends rows to the vocabulary (embedding, and lm_head when untied); returns the old size.
  // New rows follow transformers' mean_resizing: the mean of the old rows plus noise of 1e-9 times
  // their variance (diagonal here; HF uses the full covariance), so new tokens start with the average
  // token's logit and do not skew the distribution. Call before creating an optimizer (the parameter
  // tensors are resized in place). new_vocab must be >= the current size.
  int64_t resize_token_embeddings(int64_t new_vocab);

  // Sum of numel over every parameter, adapters included (each tensor counted once).
  int64_t num_parameters();
  int64_t weight_bytes();

  const Qwen2Config& config() const { return config_; }
  DType dtype() const { return dtype_; }
  torch::Device device() const { return device_; }
  torch::TensorOptions options() const { return torch::TensorOptions().dtype(to_torch(dtype_)).device(device_); }

  Qwen2Model model{nullptr};
  Linear lm_head{nullptr};  // null when tie_word_embeddings

 private:
  Qwen2Config config_;
  DType dtype_;
  torch::Device device_;
};
TORCH_MODULE(Qwen2ForCausalLM);

// The HF tensor names a checkpoint of this config holds, in model order (no lm_head when tied).
std::vector<std::string> hf_tensor_names(const Qwen2Config& config);
// name -> parameter tensor of the model's base weights (adapters excluded), by HF name.
std::vector<std::pair<std::string, torch::Tensor>> hf_named_weights(Qwen2ForCausalLM& model);

}  // namespace conductor::llm
