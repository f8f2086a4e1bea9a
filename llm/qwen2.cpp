#include "llm/qwen2.h"

#include "llm/torch_compat.h"

#include <cmath>
#include <limits>

#include "core/error.h"

namespace conductor::llm {

torch::Dtype to_torch(DType d) {
  switch (d) {
    case DType::kF32: return torch::kFloat32;
    case DType::kBF16: return torch::kBFloat16;
    case DType::kF16: return torch::kFloat16;
  }
  CONDUCTOR_CHECK(false, "dtype enum ", static_cast<int>(d));
}

DType from_torch(torch::Dtype d) {
  if (d == torch::kFloat32) return DType::kF32;
  if (d == torch::kBFloat16) return DType::kBF16;
  if (d == torch::kFloat16) return DType::kF16;
  fail("unsupported torch dtype ", c10::toString(d), " (f32, bf16, f16 only)");
}

torch::Device parse_device(const std::string& s) {
  if (s == "cpu") return torch::kCPU;
  if (s.rfind("cuda", 0) == 0) {
    torch::Device d = torch::kCPU;
    try {
      d = torch::Device(s);
    } catch (const c10::Error&) {
      fail("--device '", s, "': expected cpu, cuda or cuda:N");
    }
    if (!torch::cuda::is_available())
      fail("--device ", s, ": no CUDA device is available (this LibTorch has no CUDA support or no GPU is visible)");
    if (d.has_index() && d.index() >= static_cast<int>(torch::cuda::device_count()))
      fail("--device ", s, ": only ", torch::cuda::device_count(), " CUDA device(s) visible");
    return d;
  }
  fail("--device '", s, "': expected cpu, cuda or cuda:N");
}

void check_compute_dtype(const torch::Device& device, DType dtype) {
  if (device.is_cpu() && dtype == DType::kF16)
    fail("dtype f16 needs a CUDA device: LibTorch 1.13 has no f16 matrix multiply on the CPU; use bf16 or f32 "
         "(f16 checkpoints load into either)");
}

// ---- KV cache ----

KVCache::KVCache(const Qwen2Config& config, int64_t batch, int64_t capacity, const torch::TensorOptions& options)
    : batch_(batch), capacity_(std::max<int64_t>(capacity, 1)), kv_heads_(config.num_key_value_heads),
      head_dim_(config.head_dim()), lengths_(config.num_hidden_layers, 0) {
  CONDUCTOR_CHECK(batch > 0, "batch ", batch);
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    keys_.push_back(torch::empty({batch_, kv_heads_, capacity_, head_dim_}, options));
    values_.push_back(torch::empty({batch_, kv_heads_, capacity_, head_dim_}, options));
  }
}

void KVCache::grow(int64_t min_capacity) {
  int64_t cap = capacity_;
  while (cap < min_capacity) cap *= 2;
  for (std::size_t l = 0; l < keys_.size(); ++l) {
    for (auto* store : {&keys_, &values_}) {
      torch::Tensor bigger = torch::empty({batch_, kv_heads_, cap, head_dim_}, (*store)[l].options());
      bigger.narrow(2, 0, lengths_[l]).copy_((*store)[l].narrow(2, 0, lengths_[l]));
      (*store)[l] = bigger;
    }
  }
  capacity_ = cap;
}

std::pair<torch::Tensor, torch::Tensor> KVCache::append(int64_t layer, const torch::Tensor& k, const torch::Tensor& v) {
  CONDUCTOR_CHECK(layer >= 0 && layer < num_layers(), "layer ", layer);
  CONDUCTOR_CHECK(k.dim() == 4 && k.size(0) == batch_ && k.size(1) == kv_heads_ && k.size(3) == head_dim_,
                  "cache append: K of shape ", k.sizes(), " into a cache of batch ", batch_);
  CONDUCTOR_CHECK(v.sizes() == k.sizes(), "cache append: V ", v.sizes(), " K ", k.sizes());
  const int64_t len = lengths_[layer], T = k.size(2);
  if (len + T > capacity_) grow(len + T);
  if (torch::GradMode::is_enabled() && (k.requires_grad() || v.requires_grad())) {
    // Autograd keeps every step's K/V for the backward pass: writing into the shared buffer would
    // overwrite tensors it saved. Concatenate into new tensors instead (memory grows per step).
    keys_[layer] = torch::cat({keys_[layer].narrow(2, 0, len), k, keys_[layer].narrow(2, len + T, capacity_ - len - T)}, 2);
    values_[layer] =
        torch::cat({values_[layer].narrow(2, 0, len), v, values_[layer].narrow(2, len + T, capacity_ - len - T)}, 2);
  } else {
    keys_[layer].narrow(2, len, T).copy_(k);
    values_[layer].narrow(2, len, T).copy_(v);
  }
  lengths_[layer] = len + T;
  return {keys_[layer].narrow(2, 0, len + T), values_[layer].narrow(2, 0, len + T)};
}

void KVCache::truncate(int64_t n) {
  CONDUCTOR_CHECK(n >= 0, "truncate to ", n);
  for (auto& len : lengths_) len = std::min(len, n);
}

KVCache KVCache::copy() const {
  KVCache out = *this;  // shares the tensors; replace them by copies
  for (std::size_t l = 0; l < keys_.size(); ++l) {
    out.keys_[l] = keys_[l].clone();
    out.values_[l] = values_[l].clone();
  }
  return out;
}

int64_t KVCache::bytes_per_token() const {
  const int64_t elem = keys_.empty() ? 0 : static_cast<int64_t>(keys_[0].element_size());
  return 2 * num_layers() * kv_heads_ * head_dim_ * elem;
}

int64_t KVCache::bytes_allocated() const { return bytes_per_token() * batch_ * capacity_; }

// ---- Modules ----

EmbeddingImpl::EmbeddingImpl(int64_t num_embeddings, int64_t dim, const torch::TensorOptions& options) {
  weight = register_parameter("weight", torch::empty({num_embeddings, dim}, options));
}

torch::Tensor EmbeddingImpl::forward(const torch::Tensor& ids) { return torch::embedding(weight, ids); }

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_, const torch::TensorOptions& options) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}, options));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  const auto dtype = x.scalar_type();
  const torch::Tensor xf = x.to(torch::kFloat32);
  if (!torch::GradMode::is_enabled())  // the same operations, reusing buffers (xf may be x: not touched)
    return (xf * xf.square().mean(-1, /*keepdim=*/true).add_(eps).rsqrt_()).to(dtype).mul_(weight);
  return weight * (xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps)).to(dtype);
}

Positions make_positions(const Qwen2Config& config, int64_t start, int64_t T, int64_t keys,
                         const torch::TensorOptions& options) {
  const int64_t d = config.head_dim(), half = d / 2;
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(options.device());
  const torch::Tensor inv_freq = 1.0 / torch::pow(config.rope_theta, torch::arange(0, d, 2, f32) / static_cast<double>(d));
  const torch::Tensor freqs = torch::outer(torch::arange(start, start + T, f32), inv_freq);  // [T, d/2]
  const torch::Tensor angles = torch::cat({freqs, freqs}, -1);                              // [T, d]
  Positions p;
  p.start = start;
  p.cos = angles.cos().to(options.dtype());
  const torch::Tensor sin = angles.sin().to(options.dtype());
  p.sin_signed = torch::cat({-sin.narrow(-1, 0, half), sin.narrow(-1, half, half)}, -1);
  if (T > 1) {
    // Query t (position start + t) sees key j iff j <= t + (keys - T): the cached prefix and itself.
    p.hidden_keys = torch::ones({T, keys}, torch::TensorOptions().dtype(torch::kBool).device(options.device()))
                        .triu(keys - T + 1);
  }
  return p;
}

torch::Tensor apply_rotary(const torch::Tensor& x, const Positions& p) {
  const int64_t half = x.size(-1) / 2;
  const torch::Tensor swapped = torch::cat({x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return torch::addcmul(x * p.cos, swapped, p.sin_signed);
}

Qwen2AttentionImpl::Qwen2AttentionImpl(const Qwen2Config& c, const torch::TensorOptions& options)
    : heads_(c.num_attention_heads), kv_heads_(c.num_key_value_heads), head_dim_(c.head_dim()) {
  const int64_t h = c.hidden_size, kv = kv_heads_ * head_dim_;
  q_proj = register_module("q_proj", Linear(h, h, /*bias=*/true, options));
  k_proj = register_module("k_proj", Linear(h, kv, /*bias=*/true, options));
  v_proj = register_module("v_proj", Linear(h, kv, /*bias=*/true, options));
  o_proj = register_module("o_proj", Linear(h, h, /*bias=*/false, options));
}

torch::Tensor Qwen2AttentionImpl::forward(const torch::Tensor& x, const Positions& pos, KVCache* cache, int64_t layer) {
  const int64_t B = x.size(0), T = x.size(1);
  torch::Tensor q = q_proj(x).view({B, T, heads_, head_dim_}).transpose(1, 2);  // [B, heads, T, d]
  torch::Tensor k = k_proj(x).view({B, T, kv_heads_, head_dim_}).transpose(1, 2);
  torch::Tensor v = v_proj(x).view({B, T, kv_heads_, head_dim_}).transpose(1, 2);
  q = apply_rotary(q, pos);
  k = apply_rotary(k, pos);
  if (cache != nullptr) {
    CONDUCTOR_CHECK(cache->length(layer) == pos.start, "layer ", layer, " has ", cache->length(layer),
                    " cached tokens but the input starts at position ", pos.start);
    std::tie(k, v) = cache->append(layer, k, v);
  }
  const int64_t S = k.size(2);
  if (pos.hidden_keys.defined())
    CONDUCTOR_CHECK(pos.hidden_keys.size(1) == S, "mask for ", pos.hidden_keys.size(1), " keys, attention over ", S);
  // A fresh sequence (no cached prefix) has the plain causal mask: the fused kernels' causal path.
  const bool causal = pos.hidden_keys.defined() && S == T;
  const torch::Tensor out = compat::attention(q, k, v, pos.hidden_keys, causal)  // [B, heads, T, d]
                                .transpose(1, 2)
                                .reshape({B, T, heads_ * head_dim_});
  return o_proj(out);
}

Qwen2MLPImpl::Qwen2MLPImpl(const Qwen2Config& c, const torch::TensorOptions& options) {
  gate_proj = register_module("gate_proj", Linear(c.hidden_size, c.intermediate_size, false, options));
  up_proj = register_module("up_proj", Linear(c.hidden_size, c.intermediate_size, false, options));
  down_proj = register_module("down_proj", Linear(c.intermediate_size, c.hidden_size, false, options));
}

torch::Tensor Qwen2MLPImpl::forward(const torch::Tensor& x) {
  if (!torch::GradMode::is_enabled()) {
    torch::Tensor gate = gate_proj(x);
    return down_proj(torch::silu_(gate).mul_(up_proj(x)));
  }
  return down_proj(torch::silu(gate_proj(x)) * up_proj(x));
}

Qwen2DecoderLayerImpl::Qwen2DecoderLayerImpl(const Qwen2Config& c, const torch::TensorOptions& options) {
  self_attn = register_module("self_attn", Qwen2Attention(c, options));
  mlp = register_module("mlp", Qwen2MLP(c, options));
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps, options));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps, options));
}

torch::Tensor Qwen2DecoderLayerImpl::forward(const torch::Tensor& h, const Positions& pos, KVCache* cache,
                                             int64_t layer) {
  if (!torch::GradMode::is_enabled()) {  // residual sums into the fresh sublayer outputs
    const torch::Tensor x = self_attn(input_layernorm(h), pos, cache, layer).add_(h);
    return mlp(post_attention_layernorm(x)).add_(x);
  }
  const torch::Tensor x = h + self_attn(input_layernorm(h), pos, cache, layer);
  return x + mlp(post_attention_layernorm(x));
}

Qwen2ModelImpl::Qwen2ModelImpl(const Qwen2Config& c, const torch::TensorOptions& options) {
  embed_tokens = register_module("embed_tokens", Embedding(c.vocab_size, c.hidden_size, options));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(Qwen2DecoderLayer(c, options));
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps, options));
}

Qwen2ForCausalLMImpl::Qwen2ForCausalLMImpl(const Qwen2Config& config, DType dtype, const torch::Device& device,
                                           Init init)
    : config_(config), dtype_(dtype), device_(device) {
  config_.validate("model config");
  check_compute_dtype(device, dtype);
  const auto opts = options();
  model = register_module("model", Qwen2Model(config_, opts));
  if (!config_.tie_word_embeddings)
    lm_head = register_module("lm_head", Linear(config_.hidden_size, config_.vocab_size, false, opts));
  if (init == Init::kRandom) {
    torch::NoGradGuard no_grad;
    const double std = config_.initializer_range;
    for (auto& m : modules(/*include_self=*/false))
      if (auto* lin = m->as<LinearImpl>()) lin->init_normal(std);
    fill_normal(model->embed_tokens->weight, std);
  }
}

torch::Tensor Qwen2ForCausalLMImpl::embed(const torch::Tensor& input_ids) {
  if (input_ids.scalar_type() != torch::kInt64) fail("input_ids must be int64, got ", c10::toString(input_ids.scalar_type()));
  if (input_ids.dim() != 2) fail("input_ids must be [batch, tokens], got shape ", input_ids.sizes());
  if (input_ids.numel() > 0) {
    const int64_t lo = input_ids.min().item<int64_t>(), hi = input_ids.max().item<int64_t>();
    if (lo < 0 || hi >= config_.vocab_size)
      fail("token id ", lo < 0 ? lo : hi, " is outside the vocabulary [0, ", config_.vocab_size, ")");
  }
  return model->embed_tokens(input_ids.to(device_));
}

torch::Tensor Qwen2ForCausalLMImpl::forward_layers(const torch::Tensor& hidden, int64_t first, int64_t last,
                                                   int64_t start, KVCache* cache) {
  CONDUCTOR_CHECK(0 <= first && first <= last && last <= config_.num_hidden_layers, "layers [", first, ", ", last, ")");
  CONDUCTOR_CHECK(hidden.dim() == 3 && hidden.size(2) == config_.hidden_size, "hidden of shape ", hidden.sizes());
  const int64_t T = hidden.size(1);
  const Positions pos = make_positions(config_, start, T, (cache != nullptr ? cache->length(first) : 0) + T, hidden.options());
  torch::Tensor h = hidden;
  for (int64_t i = first; i < last; ++i) h = model->layer(i)->forward(h, pos, cache, i);
  return h;
}

torch::Tensor Qwen2ForCausalLMImpl::final_norm(const torch::Tensor& hidden) { return model->norm(hidden); }

torch::Tensor Qwen2ForCausalLMImpl::forward_hidden(const torch::Tensor& input_ids, KVCache* cache) {
  const int64_t start = cache != nullptr ? cache->length(0) : 0;
  return final_norm(forward_layers(embed(input_ids), 0, config_.num_hidden_layers, start, cache));
}

torch::Tensor Qwen2ForCausalLMImpl::head_weight() {
  return config_.tie_word_embeddings ? model->embed_tokens->weight : lm_head->weight;
}

torch::Tensor Qwen2ForCausalLMImpl::lm_logits(const torch::Tensor& hidden) {
  return config_.tie_word_embeddings ? llm::linear(hidden, model->embed_tokens->weight) : lm_head(hidden);
}

torch::Tensor Qwen2ForCausalLMImpl::lm_logits(const torch::Tensor& hidden, const torch::Tensor& rows) {
  return llm::linear(hidden, head_weight().index_select(0, rows.to(device_)));
}

torch::Tensor Qwen2ForCausalLMImpl::forward(const torch::Tensor& input_ids, KVCache* cache) {
  return lm_logits(forward_hidden(input_ids, cache));
}

KVCache Qwen2ForCausalLMImpl::make_cache(int64_t batch, int64_t capacity) {
  return KVCache(config_, batch, capacity, options());
}

namespace {
// Rows [old, new) ~ mean + sqrt(1e-9 var) * N(0, 1), per dimension, of the old rows (in f64 sums, by
// chunks of rows so no f32 copy of the whole matrix is made).
torch::Tensor mean_resized(const torch::Tensor& w, int64_t new_rows) {
  const int64_t V = w.size(0), H = w.size(1), chunk = 8192;
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(w.device());
  torch::Tensor sum = torch::zeros({H}, f64), sumsq = torch::zeros({H}, f64);
  for (int64_t r = 0; r < V; r += chunk) {
    const torch::Tensor part = w.narrow(0, r, std::min(chunk, V - r)).to(torch::kFloat64);
    sum += part.sum(0);
    sumsq += part.pow(2).sum(0);
  }
  const torch::Tensor mean = sum / static_cast<double>(V);
  const torch::Tensor var = (sumsq / static_cast<double>(V) - mean.pow(2)).clamp_min(0.0);
  const torch::Tensor noise = torch::randn({new_rows, H}, f64) * (var * 1e-9).sqrt();
  return (mean + noise).to(w.scalar_type());
}
}  // namespace

int64_t Qwen2ForCausalLMImpl::resize_token_embeddings(int64_t new_vocab) {
  const int64_t old = config_.vocab_size;
  if (new_vocab < old) fail("resize_token_embeddings: ", new_vocab, " < the current vocabulary ", old, " (only growing is supported)");
  if (new_vocab == old) return old;
  torch::NoGradGuard no_grad;
  auto grow = [&](torch::Tensor& w) {
    w.set_data(torch::cat({w, mean_resized(w, new_vocab - old)}, 0));
    if (w.grad().defined()) w.mutable_grad() = torch::Tensor();
  };
  grow(model->embed_tokens->weight);
  if (!config_.tie_word_embeddings) {
    grow(lm_head->weight);
    lm_head->set_out_features(new_vocab);
  }
  config_.vocab_size = new_vocab;
  return old;
}

int64_t Qwen2ForCausalLMImpl::num_parameters() {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

int64_t Qwen2ForCausalLMImpl::weight_bytes() {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel() * static_cast<int64_t>(p.element_size());
  return n;
}

std::vector<std::string> hf_tensor_names(const Qwen2Config& config) {
  std::vector<std::string> names = {"model.embed_tokens.weight"};
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    for (const char* n : {"self_attn.q_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.weight",
                          "self_attn.k_proj.bias", "self_attn.v_proj.weight", "self_attn.v_proj.bias",
                          "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
                          "mlp.down_proj.weight", "input_layernorm.weight", "post_attention_layernorm.weight"})
      names.push_back(p + n);
  }
  names.push_back("model.norm.weight");
  if (!config.tie_word_embeddings) names.push_back("lm_head.weight");
  return names;
}

std::vector<std::pair<std::string, torch::Tensor>> hf_named_weights(Qwen2ForCausalLM& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& kv : model->named_parameters()) {
    const std::string& name = kv.key();
    if (name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos) continue;
    out.emplace_back(name, kv.value());
  }
  return out;
}

}  // namespace conductor::llm
