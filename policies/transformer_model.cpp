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

namespace {

constexpr const char* kTensors = "policy.safetensors";

uint64_t hash_tokens(const int32_t* t, int64_t n) {
  return fnv1a64(std::string_view(reinterpret_cast<const char*>(t), static_cast<std::size_t>(n) * sizeof(int32_t)));
}

bool same_tokens(const std::vector<int32_t>& a, const int32_t* b, int64_t n) {
  return static_cast<int64_t>(a.size()) == n && std::equal(a.begin(), a.end(), b);
}

torch::Tensor ids_tensor(const int32_t* t, int64_t n, const torch::Device& device) {
  std::vector<int64_t> v(t, t + n);
  return torch::tensor(v, torch::kInt64).view({1, n}).to(device);
}

// sha256 of a checkpoint's config.json and weight files, in name order: what a resumed or exported
// run checks its base against.
std::string checkpoint_sha256(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n == "config.json" || (n.size() > 12 && n.substr(n.size() - 12) == ".safetensors") ||
        n == "model.safetensors.index.json")
      names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  std::string all;
  for (const auto& n : names) all += n + " " + sha256_file((fs::path(dir) / n).string()) + "\n";
  return sha256_hex(all);
}

llm::LoraConfig lora_config_of(const TransformerSettings& s) {
  llm::LoraConfig c;
  c.r = s.lora_r;
  c.alpha = s.lora_alpha;
  c.dropout = s.lora_dropout;
  c.target_modules = s.lora_targets;
  c.layers.assign(s.lora_layers.begin(), s.lora_layers.end());
  return c;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Core

namespace {

std::shared_ptr<TransformerCore> make_core(const TransformerSettings& s, const std::vector<std::string>& action_names,
                                           int max_steps) {
  auto c = std::make_shared<TransformerCore>();
  c->settings = s;
  c->action_names = action_names;
  c->tokenizer = std::make_shared<BpeTokenizer>(BpeTokenizer::load(s.tokenizer_path()));
  const int32_t base_vocab = c->tokenizer->vocab_size();
  c->prompt = std::make_shared<ConductorPrompt>(c->tokenizer, action_names, max_steps, s.max_prompt_tokens);
  const llm::DType dtype = llm::parse_dtype(s.dtype);
  const torch::Device device = llm::parse_device(s.device);
  llm::check_compute_dtype(device, dtype);
  if (!s.checkpoint.empty()) {
    c->lm = llm::load_hf_checkpoint(s.checkpoint, {dtype, device});
    c->base_sha256 = checkpoint_sha256(s.checkpoint);
    if (base_vocab > c->lm->config().vocab_size)
      fail(s.tokenizer_path(), ": the tokenizer has ", base_vocab, " ids but the model in ", s.checkpoint, " only ",
           c->lm->config().vocab_size, " embedding rows");
  } else {
    llm::Qwen2Config cfg = llm::Qwen2Config::preset(s.model);
    cfg.vocab_size = c->tokenizer->vocab_size();
    c->lm = llm::Qwen2ForCausalLM(cfg, dtype, device, llm::Init::kRandom);
  }
  const int64_t L = c->lm->config().num_hidden_layers, H = c->lm->config().hidden_size;
  const int A = static_cast<int>(action_names.size());
  torch::NoGradGuard ng;
  // Action tokens' input rows start at the mean embedding of their name's tokens ("call:gpt-4" ->
  // "gpt", "-", "4"), so different actions read differently from the first step (a plain mean
  // embedding, transformers' resize convention, would make them all the same input); output rows
  // start at zero (a uniform initial policy).
  const torch::Tensor embed = c->lm->model->embed_tokens->weight;
  const int64_t known_rows = std::min<int64_t>(embed.size(0), base_vocab);
  const torch::Tensor mean_row = embed.narrow(0, 0, known_rows).to(torch::kFloat32).mean(0);
  std::vector<torch::Tensor> rows;
  for (const auto& name : action_names) {
    const std::size_t colon = name.find(':');
    std::vector<int64_t> toks;
    for (int32_t t : c->tokenizer->encode(name.substr(colon + 1)))
      if (t < known_rows) toks.push_back(t);
    rows.push_back(toks.empty() ? mean_row
                                : embed.index_select(0, torch::tensor(toks, torch::kInt64).to(device)).to(torch::kFloat32).mean(0));
  }
  c->action_embed = torch::stack(rows).to(embed.scalar_type()).contiguous();
  c->action_head = torch::zeros({A, H}, torch::TensorOptions().dtype(torch::kFloat32).device(device));
  c->value_head = torch::nn::Linear(H, 1);
  c->value_head->to(device);
  c->value_head->weight.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(H)));
  c->value_head->bias.zero_();
  std::vector<int64_t> of(static_cast<std::size_t>(c->tokenizer->vocab_size()), -1);
  const auto& ids = c->prompt->action_token_ids();
  for (int a = 0; a < A; ++a) of[static_cast<std::size_t>(ids[a])] = a;
  c->action_of_token = torch::tensor(of, torch::kInt64).to(device);
  // What trains.
  const int K = s.train_top_layers;
  if (K > L) fail("policy.train_top_layers: ", K, " exceeds the model's ", L, " layers");
  if (s.lora) {
    llm::LoraConfig lc = lora_config_of(s);
    if (K > 0) {
      if (lc.layers.empty())
        for (int64_t i = L - K; i < L; ++i) lc.layers.push_back(i);
      for (int64_t i : lc.layers)
        if (i < L - K)
          fail("policy.lora.layers: layer ", i, " is below the top ", K, " layers (train_top_layers): the lower "
               "layers are frozen and their outputs cached, so they cannot carry adapters");
    }
    lc.validate(L);
    llm::apply_lora(c->lm, lc);
  } else if (K > 0) {
    llm::train_top_layers(c->lm, K);
  }
  c->frozen_layers = K > 0 && K < L ? L - K : 0;
  // With frozen lower layers the action tokens' input rows stay as initialized: the cached lower
  // activations of a prompt (which contains action tokens) must not depend on anything that trains.
  c->action_embed.requires_grad_(c->frozen_layers == 0);
  c->action_head.requires_grad_(true);
  return c;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Caches

const TransformerCaches::Decision* TransformerCaches::find_decision(const int32_t* tokens, int64_t n) {
  const uint64_t h = hash_tokens(tokens, n);
  for (auto* m : {&decisions_, &pinned_}) {
    auto range = m->equal_range(h);
    for (auto it = range.first; it != range.second; ++it)
      if (same_tokens(it->second.tokens, tokens, n)) {
        it->second.used = call_;
        return &it->second;
      }
  }
  return nullptr;
}

void TransformerCaches::put_decision(Decision d, bool pinned) {
  const uint64_t h = hash_tokens(d.tokens.data(), static_cast<int64_t>(d.tokens.size()));
  d.used = call_;
  auto& m = pinned ? pinned_ : decisions_;
  if (pinned && m.size() >= 64) m.clear();
  m.emplace(h, std::move(d));
}

torch::Tensor TransformerCaches::find_lower(const int32_t* tokens, int64_t n) {
  auto range = lowers_.equal_range(hash_tokens(tokens, n));
  for (auto it = range.first; it != range.second; ++it)
    if (same_tokens(it->second.tokens, tokens, n)) {
      ++lower_hits;
      return it->second.lower;
    }
  ++lower_misses;
  return {};
}

void TransformerCaches::put_lower(const int32_t* tokens, int64_t n, const torch::Tensor& lower, int64_t budget_bytes) {
  const int64_t bytes = static_cast<int64_t>(lower.nbytes()) + n * 4;
  if (bytes > budget_bytes) return;
  {
    auto range = lowers_.equal_range(hash_tokens(tokens, n));
    for (auto it = range.first; it != range.second; ++it)
      if (same_tokens(it->second.tokens, tokens, n)) return;  // already there
  }
  // First in, first out: the oldest prompts go when the budget is full.
  while (lower_bytes_ + bytes > budget_bytes && !lower_order_.empty()) {
    const uint64_t h = lower_order_.front();
    lower_order_.erase(lower_order_.begin());
    auto it = lowers_.find(h);
    if (it != lowers_.end()) {
      lower_bytes_ -= static_cast<int64_t>(it->second.lower.nbytes() + it->second.tokens.size() * 4);
      lowers_.erase(it);
    }
  }
  const uint64_t h = hash_tokens(tokens, n);
  lowers_.emplace(h, Lower{std::vector<int32_t>(tokens, tokens + n), lower});
  lower_order_.push_back(h);
  lower_bytes_ += bytes;
}

void TransformerCaches::next_call(uint64_t keep) {
  ++call_;
  for (auto it = decisions_.begin(); it != decisions_.end();)
    it = it->second.used + keep < call_ ? decisions_.erase(it) : std::next(it);
}

void TransformerCaches::clear_decisions() {
  decisions_.clear();
  pinned_.clear();
}

void TransformerCaches::clear() {
  decisions_.clear();
  pinned_.clear();
  lowers_.clear();
  lower_order_.clear();
  lower_bytes_ = 0;
}

// ---------------------------------------------------------------------------------------------
// Model

TransformerModel::TransformerModel(const TransformerSettings& settings, const EnvSpec& env)
    : TransformerModel(make_core(settings, env.action_names, env.max_episode_steps > 0 ? env.max_episode_steps : 1)) {}

TransformerModel::TransformerModel(std::shared_ptr<TransformerCore> core) : core_(std::move(core)) {
  const torch::Tensor of = core_->action_of_token.to(torch::kCPU).contiguous();
  action_of_cpu_.assign(of.data_ptr<int64_t>(), of.data_ptr<int64_t>() + of.numel());
}

void TransformerModel::encode(const ObsBatch& obs, EncodedObs& out) const {
  CONDUCTOR_CHECK(obs.states, "transformer encode: an observation batch without state views");
  for (int i = 0; i < obs.n; ++i) {
    const PromptTokens p = core_->prompt->render(obs.states[i]);
    if (p.truncated) ++*truncated_;
    out.tokens.insert(out.tokens.end(), p.ids.begin(), p.ids.end());
    out.offsets.push_back(static_cast<int64_t>(out.tokens.size()));
    // The system part's length: the first chunk boundary (chunk_ends() finds the others).
    out.keys.push_back(p.system_end);
  }
  out.rows += obs.n;
}

torch::Tensor TransformerModel::embed(const torch::Tensor& ids) {
  const TransformerCore& c = *core_;
  const torch::Tensor a = c.action_of_token.index_select(0, ids.flatten()).view(ids.sizes());
  const torch::Tensor is_action = a >= 0;
  const torch::Tensor base_ids = torch::where(is_action, torch::zeros_like(ids), ids);
  const torch::Tensor W = c.lm->model->embed_tokens->weight;
  const torch::Tensor base = W.index_select(0, base_ids.flatten()).view({ids.size(0), ids.size(1), W.size(1)});
  const torch::Tensor act = c.action_embed.index_select(0, a.clamp_min(0).flatten()).view(base.sizes());
  return torch::where(is_action.unsqueeze(-1), act, base);
}

std::vector<int64_t> TransformerModel::chunk_ends(const int32_t* tokens, int64_t n, int64_t system_end) const {
  // The system part, the query, then each call (a call's part starts with its action token; no
  // action token can come from the query's text, see ConductorPrompt::plain_ids).
  std::vector<int64_t> ends;
  if (system_end > 0 && system_end < n) ends.push_back(system_end);
  const int64_t V = core_->action_of_token.size(0);
  const int64_t* of = action_of_cpu_.data();
  for (int64_t i = std::max<int64_t>(system_end, 0) + 1; i < n; ++i)
    if (tokens[i] >= 0 && tokens[i] < V && of[tokens[i]] >= 0) ends.push_back(i);
  ends.push_back(n);
  return ends;
}

torch::Tensor TransformerModel::lower_of(const int32_t* tokens, int64_t n, int64_t system_end) {
  torch::Tensor low = caches_->find_lower(tokens, n);
  if (low.defined()) return low;
  // Not cached (evicted, or no rollout saw it): computed as the rollout computes it, chunk by chunk,
  // so a row's value never depends on what the cache held.
  torch::NoGradGuard ng;
  llm::KVCache kv = core_->lm->make_cache(1, n);
  int64_t start = 0;
  for (int64_t end : chunk_ends(tokens, n, system_end)) {
    run_chunk(tokens, start, end, &kv, low, /*top=*/false);
    start = end;
  }
  caches_->put_lower(tokens, n, low, core_->settings.frozen_cache_mb << 20);
  return low;
}

torch::Tensor TransformerModel::run_chunk(const int32_t* tokens, int64_t start, int64_t end, llm::KVCache* kv,
                                          torch::Tensor& lower, bool top) {
  TransformerCore& c = *core_;
  const int64_t L = c.num_layers(), F = c.frozen_layers;
  torch::Tensor h = embed(ids_tensor(tokens + start, end - start, c.lm->device()));
  if (F > 0) {
    h = c.lm->forward_layers(h, 0, F, start, kv);
    lower = lower.defined() ? torch::cat({lower, h[0]}, 0) : h[0].clone();
  }
  if (!top) return {};
  h = c.lm->forward_layers(h, F, L, start, kv);
  return c.lm->final_norm(h.narrow(1, h.size(1) - 1, 1)).reshape({-1}).clone();
}

torch::Tensor TransformerModel::hidden_no_grad(const int32_t* tokens, int64_t n, int64_t system_end) {
  TransformerCore& c = *core_;
  if (const auto* d = caches_->find_decision(tokens, n)) {
    caches_->kv_reuse_tokens += n;
    return d->last_hidden;
  }
  const int64_t F = c.frozen_layers;
  // Each prompt is computed in the same chunks (system part, query, each call), from scratch or
  // continuing the KV cache of a cached earlier boundary: the same floats either way, so results
  // do not depend on the cache's state (exact resume).
  const std::vector<int64_t> ends = chunk_ends(tokens, n, system_end);
  const TransformerCaches::Decision* from = nullptr;
  for (auto it = ends.rbegin() + 1; it != ends.rend() && !from; ++it) from = caches_->find_decision(tokens, *it);
  std::shared_ptr<llm::KVCache> kv;
  torch::Tensor lower;
  int64_t start = 0;
  if (from) {
    kv = std::make_shared<llm::KVCache>(from->kv->copy());
    lower = from->lower;
    start = static_cast<int64_t>(from->tokens.size());
  } else {
    kv = std::make_shared<llm::KVCache>(c.lm->make_cache(1, n + 64));
  }
  caches_->kv_reuse_tokens += start;
  torch::Tensor last;
  for (int64_t end : ends) {
    if (end <= start) continue;
    caches_->kv_new_tokens += end - start;
    last = run_chunk(tokens, start, end, kv.get(), lower, /*top=*/true);
    start = end;
    if (end == system_end) {  // the shared system part, kept for every query with the same pool and prices
      TransformerCaches::Decision sys;
      sys.last_hidden = last;
      sys.tokens.assign(tokens, tokens + end);
      sys.kv = std::make_shared<llm::KVCache>(kv->copy());
      sys.lower = lower;
      caches_->put_decision(std::move(sys), /*pinned=*/true);
    }
  }
  TransformerCaches::Decision d;
  d.last_hidden = last;
  d.tokens.assign(tokens, tokens + n);
  d.kv = kv;
  d.lower = lower;
  if (F > 0) caches_->put_lower(tokens, n, lower, c.settings.frozen_cache_mb << 20);
  caches_->put_decision(std::move(d), /*pinned=*/false);
  return last;
}

torch::Tensor TransformerModel::last_position_layer(int64_t index, const torch::Tensor& h, const torch::Tensor& lengths) {
  TransformerCore& c = *core_;
  const llm::Qwen2Config& cfg = c.lm->config();
  auto layer = c.lm->model->layer(index);
  auto& attn = *layer->self_attn;
  const int64_t B = h.size(0), T = h.size(1), heads = cfg.num_attention_heads, kvh = cfg.num_key_value_heads;
  const int64_t d = cfg.head_dim();
  const torch::Tensor x = layer->input_layernorm(h);
  const llm::Positions pos = llm::make_positions(cfg, 0, T, T, h.options());
  // Keys and values at every position (the last token attends to all of its prompt).
  const torch::Tensor k = llm::apply_rotary(attn.k_proj(x).view({B, T, kvh, d}).transpose(1, 2), pos);  // [B, kvh, T, d]
  const torch::Tensor v = attn.v_proj(x).view({B, T, kvh, d}).transpose(1, 2);
  // The query of each row's last token only, rotated at its own position.
  const torch::Tensor last = (lengths - 1).to(h.device());
  const torch::Tensor gather_idx = last.view({B, 1, 1}).expand({B, 1, h.size(2)});
  const torch::Tensor x_last = x.gather(1, gather_idx);  // [B, 1, H]
  const torch::Tensor h_last = h.gather(1, gather_idx);
  llm::Positions qpos;
  qpos.cos = pos.cos.index_select(0, last).view({B, 1, 1, d});
  qpos.sin_signed = pos.sin_signed.index_select(0, last).view({B, 1, 1, d});
  const torch::Tensor q = llm::apply_rotary(attn.q_proj(x_last).view({B, 1, heads, d}).transpose(1, 2), qpos);
  // The model's attention (llm/torch_compat.h) with one mask per row: its padding keys are hidden.
  const torch::Tensor hidden_keys =
      torch::arange(T, torch::TensorOptions().dtype(torch::kInt64).device(h.device())).view({1, 1, T}) >=
      last.view({B, 1, 1}) + 1;                                                       // [B, 1, T]
  const torch::Tensor out = compat::attention(q, k, v, hidden_keys, /*causal=*/false)  // [B, heads, 1, d]
                                .transpose(1, 2)
                                .reshape({B, 1, heads * d});
  const torch::Tensor y = h_last + attn.o_proj(out);
  return (y + layer->mlp(layer->post_attention_layernorm(y))).squeeze(1);
}

torch::Tensor TransformerModel::hidden_batch(const std::vector<std::vector<int32_t>>& rows,
                                             const std::vector<int64_t>& system_ends) {
  TransformerCore& c = *core_;
  const int64_t L = c.num_layers(), F = c.frozen_layers, B = static_cast<int64_t>(rows.size());
  int64_t T = 0;
  std::vector<int64_t> lengths;
  for (const auto& r : rows) {
    lengths.push_back(static_cast<int64_t>(r.size()));
    T = std::max<int64_t>(T, static_cast<int64_t>(r.size()));
  }
  torch::Tensor h;
  if (F > 0) {
    std::vector<torch::Tensor> padded;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& r = rows[i];
      const torch::Tensor low = lower_of(r.data(), static_cast<int64_t>(r.size()), system_ends[i]);
      padded.push_back(torch::constant_pad_nd(low, {0, 0, 0, T - low.size(0)}));
    }
    h = torch::stack(padded);
  } else {
    std::vector<int64_t> ids(static_cast<std::size_t>(B * T), 0);
    for (int64_t b = 0; b < B; ++b) std::copy(rows[b].begin(), rows[b].end(), ids.begin() + b * T);
    h = embed(torch::tensor(ids, torch::kInt64).view({B, T}).to(c.lm->device()));
  }
  if (F < L - 1) h = c.lm->forward_layers(h, F, L - 1, 0);
  const torch::Tensor last = last_position_layer(L - 1, h, torch::tensor(lengths, torch::kInt64));
  return c.lm->final_norm(last);
}

torch::Tensor TransformerModel::last_hidden(const EncodedObs& enc, const torch::Tensor& rows) {
  TransformerCore& c = *core_;
  const auto idx = rows.to(torch::kCPU).contiguous();
  const int64_t* r = idx.data_ptr<int64_t>();
  const int64_t R = idx.numel();
  std::lock_guard<std::mutex> lock(*mutex_);
  const bool adapters_off = c.adapters_off;
  if (adapters_off) llm::set_adapters_enabled(c.lm, false);
  struct Restore {
    TransformerCore& c;
    bool on;
    ~Restore() {
      if (on) llm::set_adapters_enabled(c.lm, true);
    }
  } restore{c, adapters_off};
  if (!torch::GradMode::is_enabled()) {
    if (weights_may_have_changed_) {  // a gradient pass came before: cached KV and states are stale
      caches_->clear_decisions();
      weights_may_have_changed_ = false;
    }
    c.lm->eval();
    std::vector<torch::Tensor> out;
    for (int64_t i = 0; i < R; ++i) {
      const int64_t row = r[i];
      out.push_back(hidden_no_grad(enc.tokens.data() + enc.offsets[row], enc.offsets[row + 1] - enc.offsets[row],
                                   enc.keys.at(static_cast<std::size_t>(row))));
    }
    caches_->next_call();
    return torch::stack(out);
  }
  c.lm->train();
  weights_may_have_changed_ = true;
  std::vector<std::vector<int32_t>> toks;
  std::vector<int64_t> system_ends;
  for (int64_t i = 0; i < R; ++i) {
    toks.emplace_back(enc.tokens.begin() + enc.offsets[r[i]], enc.tokens.begin() + enc.offsets[r[i] + 1]);
    system_ends.push_back(enc.keys.at(static_cast<std::size_t>(r[i])));
  }
  return hidden_batch(toks, system_ends);
}

PolicyOutput TransformerModel::forward(const EncodedObs& enc, const torch::Tensor& rows) {
  const torch::Tensor h = last_hidden(enc, rows).to(torch::kFloat32);
  return {h.matmul(core_->action_head.t()), core_->value_head(h).squeeze(-1)};
}

std::vector<std::pair<std::string, double>> TransformerModel::take_stats() {
  const int64_t t = truncated_->load(), r = caches_->kv_reuse_tokens.load(), n = caches_->kv_new_tokens.load();
  const int64_t dr = r - taken_reused_, dn = n - taken_new_;
  std::vector<std::pair<std::string, double>> out = {
      {"policy/truncated_prompts", static_cast<double>(t - taken_truncated_)},
      {"policy/kv_reused_share", dr + dn > 0 ? static_cast<double>(dr) / static_cast<double>(dr + dn) : 0.0}};
  taken_truncated_ = t;
  taken_reused_ = r;
  taken_new_ = n;
  return out;
}

std::vector<torch::Tensor> TransformerModel::parameters() {
  std::vector<torch::Tensor> out = policy_parameters();
  for (const auto& p : core_->value_head->parameters()) out.push_back(p);
  return out;
}

std::vector<torch::Tensor> TransformerModel::policy_parameters() {
  std::vector<torch::Tensor> out;
  for (const auto& p : core_->lm->named_parameters())
    if (p.value().requires_grad() && p.key() != "lm_head.weight") out.push_back(p.value());
  if (core_->action_embed.requires_grad()) out.push_back(core_->action_embed);
  out.push_back(core_->action_head);
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> TransformerModel::saved_tensors() {
  TransformerCore& c = *core_;
  std::vector<std::pair<std::string, torch::Tensor>> out;
  const bool everything = c.settings.checkpoint.empty();  // a preset's weights exist nowhere else
  for (const auto& p : c.lm->named_parameters())
    if (everything || p.value().requires_grad()) out.emplace_back(p.key(), p.value());
  out.emplace_back("policy.action_embed", c.action_embed);
  out.emplace_back("policy.action_head", c.action_head);
  out.emplace_back("policy.value_head.weight", c.value_head->weight);
  out.emplace_back("policy.value_head.bias", c.value_head->bias);
  return out;
}

void TransformerModel::save_weights(const std::string& path) { llm::write_tensors(path, saved_tensors(), std::nullopt); }

void TransformerModel::load_weights(const std::string& path) {
  const safetensors::MappedFile file(path);
  const auto tensors = saved_tensors();
  std::set<std::string> expected;
  for (const auto& [name, t] : tensors) {
    expected.insert(name);
    if (!file.has(name)) fail(path, ": tensor '", name, "' is missing (this policy's settings save it)");
    torch::NoGradGuard ng;
    llm::copy_tensor(t, file, name);
  }
  for (const auto& name : file.names())
    if (!expected.count(name)) fail(path, ": unexpected tensor '", name, "' (not saved by this policy's settings)");
  caches_->clear();
}

void TransformerModel::save(const std::string& dir) {
  const TransformerCore& c = *core_;
  save_weights(dir + "/" + kTensors);
  const json j = {{"kind", "transformer"},
                  {"settings", c.settings.to_json()},
                  {"action_names", c.action_names},
                  {"max_steps", c.prompt->max_steps()},
                  {"base_sha256", c.base_sha256},
                  {"tensors", kTensors}};
  write_file_atomic(dir + "/policy.json", j.dump(2) + "\n");
}


namespace {

struct CheckpointInfo {
  TransformerSettings settings;
  std::vector<std::string> action_names;
  int max_steps = 1;
  std::string base_sha256;
};

CheckpointInfo read_info(const std::string& dir) {
  const std::string path = dir + "/policy.json";
  const json j = parse_json(read_file(path), path);
  CheckpointInfo info;
  try {
    if (j.at("kind").get<std::string>() != "transformer") fail(path, ": policy kind '", j.at("kind"), "' is not 'transformer'");
    info.settings = TransformerSettings::from_json(j.at("settings"), path);
    info.action_names = j.at("action_names").get<std::vector<std::string>>();
    info.max_steps = j.at("max_steps").get<int>();
    info.base_sha256 = j.at("base_sha256").get<std::string>();
  } catch (const json::exception& e) {
    fail(path, ": invalid transformer checkpoint: ", e.what());
  }
  return info;
}

}  // namespace

void TransformerModel::load(const std::string& dir) {
  const CheckpointInfo info = read_info(dir);
  const TransformerCore& c = *core_;
  const std::string path = dir + "/policy.json";
  if (info.action_names != c.action_names)
    fail(path, ": the checkpoint's actions differ from this environment's (a transformer's actions are tokens: ",
         "the worker list and the finish rules must be the same, in the same order)");
  // Settings must agree but for where the files are (the base is identified by its sha256).
  auto comparable = [](const TransformerSettings& t) {
    json j = t.to_json();
    j.erase("checkpoint");
    j.erase("tokenizer");
    return j;
  };
  if (comparable(info.settings) != comparable(c.settings))
    fail(path, ": the checkpoint was made with other policy settings (", comparable(info.settings).dump(),
         ") than these (", comparable(c.settings).dump(), ")");
  if (info.base_sha256 != c.base_sha256)
    fail(path, ": the base checkpoint ", c.settings.checkpoint, " has changed since this run started (sha256 ",
         c.base_sha256, ", the run recorded ", info.base_sha256, ")");
  load_weights(dir + "/" + kTensors);
}

std::unique_ptr<PolicyModel> TransformerModel::frozen_copy() {
  const TransformerCore& c = *core_;
  auto r = std::make_shared<TransformerCore>(c);
  torch::NoGradGuard ng;
  r->action_embed = c.action_embed.detach().clone();
  r->action_head = c.action_head.detach().clone();
  r->value_head = torch::nn::Linear(c.value_head->options);
  r->value_head->to(c.lm->device());
  r->value_head->weight.copy_(c.value_head->weight);
  r->value_head->bias.copy_(c.value_head->bias);
  if (c.settings.lora) {
    // The same network with its adapters off: no second copy of the base weights.
    r->adapters_off = true;
  } else {
    // A full copy of the base network (every weight that can change).
    llm::Qwen2ForCausalLM copy(c.lm->config(), c.lm->dtype(), c.lm->device(), llm::Init::kUninitialized);
    auto src = c.lm->named_parameters();
    for (auto& p : copy->named_parameters()) p.value().copy_(src[p.key()]);
    r->lm = copy;
  }
  for (auto& p : r->lm->parameters())
    if (!c.settings.lora) p.requires_grad_(false);
  return std::make_unique<TransformerModel>(r);
}

// ---------------------------------------------------------------------------------------------
// Inference

namespace {

// The torch-free face of a transformer conductor: renders each row's state, runs the network
// without gradients (KV caches of the episode's earlier steps) and acts on the masked softmax.
class TransformerPolicy final : public Policy {
 public:
  explicit TransformerPolicy(std::shared_ptr<TransformerCore> core) : model_(std::move(core)) {}
  std::string kind() const override { return "transformer"; }
  int n_actions() const override { return model_.n_actions(); }
  ObsNeeds needs() const override { return ObsNeeds{0, true}; }
  void act(const ObsBatch& obs, const ActOptions& options, int32_t* actions, float* probs) const override {
    const int A = n_actions();
    CONDUCTOR_CHECK(obs.states && obs.n_actions == A, "transformer policy fed a batch it cannot read (check_obs_fits first)");
    torch::Tensor logits;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      EncodedObs enc;
      model_.encode(obs, enc);
      torch::NoGradGuard ng;
      logits = model_.forward(enc, row_range(0, obs.n)).logits.to(torch::kCPU).contiguous();
    }
    Rng rng(options.seed);
    std::vector<float> p(static_cast<std::size_t>(A));
    const float* l = logits.data_ptr<float>();
    for (int i = 0; i < obs.n; ++i) {
      const double u = options.greedy ? 0.0 : rng.uniform();
      try {
        actions[i] = choose_action(l + static_cast<std::size_t>(i) * A, obs.mask + static_cast<std::size_t>(i) * A, A,
                                   options.greedy, u, p.data());
      } catch (const Error&) {
        fail("policy.act: row ", i, " has no allowed action in its mask");
      }
      if (probs) std::copy(p.begin(), p.end(), probs + static_cast<std::size_t>(i) * A);
    }
  }

 private:
  mutable TransformerModel model_;
  mutable std::mutex mutex_;
};

}  // namespace

std::unique_ptr<Policy> TransformerModel::inference_policy() { return std::make_unique<TransformerPolicy>(core_); }

std::unique_ptr<Policy> make_transformer_policy(std::shared_ptr<TransformerCore> core) {
  return std::make_unique<TransformerPolicy>(std::move(core));
}

std::shared_ptr<TransformerCore> load_transformer_checkpoint(const std::string& dir) {
  const CheckpointInfo info = read_info(dir);
  TransformerModel model(make_core(info.settings, info.action_names, info.max_steps));
  model.load(dir);
  return model.core();
}

}  // namespace conductor
