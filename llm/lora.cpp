#include "llm/lora.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "artifacts/safetensors.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "llm/atomic_dir.h"
#include "llm/hf_checkpoint.h"
#include "llm/qwen2.h"

namespace conductor::llm {

// ---- Linear ----

namespace {

// AVX512-BF16 (or AMX) gives oneDNN native bf16 dot products; without them its bf16 GEMM converts as it
// goes and runs at a third of OpenBLAS's f32 GEMM on the same CPU (17 vs 45-60 GFLOP/s measured on
// this machine's AVX-512 Xeon, 2 threads).
bool cpu_has_native_bf16() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  static const bool native = __builtin_cpu_supports("avx512bf16");
  return native;
#else
  return true;  // elsewhere keep bf16 GEMMs as LibTorch runs them
#endif
}

constexpr int64_t kUpcastMinRows = 64;          // below this the conversion costs more than it saves
constexpr int64_t kUpcastChunkElems = 1 << 26;  // f32 copy of at most 256 MB of W at a time

}  // namespace

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  if (!x.device().is_cpu() || x.numel() == 0) return torch::linear(x, w, b);
  const int64_t rows = x.numel() / x.size(-1);
  if (rows == 1 && x.scalar_type() == torch::kFloat32) {  // decoding: GEMV, not a one-row GEMM
    torch::Tensor y = torch::mv(w, x.reshape({-1}));
    if (b.defined()) y = y + b;
    std::vector<int64_t> sizes = x.sizes().vec();
    sizes.back() = w.size(0);
    return y.view(sizes);
  }
  if (x.scalar_type() == torch::kBFloat16 && rows >= kUpcastMinRows && !torch::GradMode::is_enabled() &&
      !cpu_has_native_bf16()) {
    // The same products summed in f32, as the bf16 GEMM does internally, by the faster f32 GEMM; the
    // result is rounded to bf16 like the bf16 GEMM's. W is converted a block of rows at a time so the
    // f32 copy stays small (the 7B lm_head would be 2.2 GB at once). Inference only: autograd would
    // keep every f32 copy for the backward pass.
    const torch::Tensor x32 = x.to(torch::kFloat32);
    const int64_t out = w.size(0), chunk = std::max<int64_t>(1, kUpcastChunkElems / w.size(1));
    std::vector<torch::Tensor> parts;
    for (int64_t r = 0; r < out; r += chunk) {
      const int64_t n = std::min(chunk, out - r);
      parts.push_back(torch::linear(x32, w.narrow(0, r, n).to(torch::kFloat32),
                                    b.defined() ? b.narrow(0, r, n).to(torch::kFloat32) : torch::Tensor()));
    }
    return (parts.size() == 1 ? parts[0] : torch::cat(parts, -1)).to(x.scalar_type());
  }
  return torch::linear(x, w, b);
}

LinearImpl::LinearImpl(int64_t in_features, int64_t out_features, bool with_bias, const torch::TensorOptions& options)
    : in_features_(in_features), out_features_(out_features) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}, options));
  if (with_bias) bias = register_parameter("bias", torch::zeros({out_features}, options));
}

void fill_normal(const torch::Tensor& t, double std) {
  torch::NoGradGuard no_grad;
  if (t.scalar_type() == torch::kFloat32 || t.scalar_type() == torch::kFloat64) {
    t.normal_(0.0, std);
    return;
  }
  // LibTorch 1.13's normal_ is several times slower in bf16 than in f32 on the CPU: draw f32 chunks
  // and round them into place (also the same stream of numbers as an f32 model of the same seed).
  CONDUCTOR_CHECK(t.is_contiguous(), "fill_normal on a non-contiguous tensor");
  torch::Tensor flat = t.view({-1});
  const int64_t n = flat.numel(), chunk = int64_t{1} << 22;
  for (int64_t off = 0; off < n; off += chunk) {
    const int64_t m = std::min(chunk, n - off);
    flat.narrow(0, off, m).copy_(torch::empty({m}, t.options().dtype(torch::kFloat32)).normal_(0.0, std));
  }
}

void LinearImpl::init_normal(double std) {
  torch::NoGradGuard no_grad;
  fill_normal(weight, std);
  if (bias.defined()) bias.zero_();
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = llm::linear(x, weight, bias);
  if (has_adapter() && adapter_enabled_ && !merged_) {
    torch::Tensor a = x.to(lora_A->weight.scalar_type());
    if (dropout_ > 0.0) a = torch::dropout(a, dropout_, is_training());
    y = y + (lora_B(lora_A(a)) * scaling_).to(y.scalar_type());
  }
  return y;
}

void LinearImpl::add_adapter(int64_t r, double alpha, double dropout, torch::Dtype adapter_dtype) {
  CONDUCTOR_CHECK(!has_adapter(), "layer already has an adapter");
  CONDUCTOR_CHECK(r >= 1, "rank ", r);
  r_ = r;
  scaling_ = alpha / static_cast<double>(r);
  dropout_ = dropout;
  // torch::nn::Linear initializes its weight kaiming-uniform with a = sqrt(5): peft's init of A.
  lora_A = register_module("lora_A", torch::nn::Linear(torch::nn::LinearOptions(in_features_, r).bias(false)));
  lora_B = register_module("lora_B", torch::nn::Linear(torch::nn::LinearOptions(r, out_features_).bias(false)));
  {
    torch::NoGradGuard no_grad;
    lora_B->weight.zero_();
  }
  lora_A->to(weight.device(), adapter_dtype);
  lora_B->to(weight.device(), adapter_dtype);
  weight.set_requires_grad(false);
  if (bias.defined()) bias.set_requires_grad(false);
}

void LinearImpl::set_adapter_enabled(bool enabled) {
  if (merged_ && !enabled) fail("cannot disable a merged LoRA adapter: unmerge it first");
  adapter_enabled_ = enabled;
}

torch::Tensor LinearImpl::delta_weight() const {
  return (torch::matmul(lora_B->weight, lora_A->weight) * scaling_).to(weight.scalar_type());
}

void LinearImpl::merge() {
  if (!has_adapter() || merged_) return;
  torch::NoGradGuard no_grad;
  weight.add_(delta_weight());
  merged_ = true;
}

void LinearImpl::unmerge() {
  if (!merged_) return;
  torch::NoGradGuard no_grad;
  weight.sub_(delta_weight());
  merged_ = false;
}

torch::Tensor LinearImpl::merged_weight() const {
  if (!has_adapter() || !adapter_enabled_ || merged_) return weight;
  torch::NoGradGuard no_grad;
  return weight + delta_weight();
}

// ---- LoraConfig ----

const std::vector<std::string>& lora_target_names() {
  static const std::vector<std::string> names = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                 "gate_proj", "up_proj", "down_proj"};
  return names;
}

void LoraConfig::validate(int64_t num_layers) const {
  if (r < 1) fail("lora: rank r must be >= 1, got ", r);
  if (!(alpha > 0)) fail("lora: alpha must be > 0, got ", alpha);
  if (!(dropout >= 0.0 && dropout < 1.0)) fail("lora: dropout must be in [0, 1), got ", dropout);
  if (target_modules.empty()) fail("lora: target_modules is empty");
  const auto& known = lora_target_names();
  for (const auto& t : target_modules)
    if (std::find(known.begin(), known.end(), t) == known.end()) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      fail("lora: unknown target module '", t, "' (known: ", list, ")");
    }
  for (int64_t l : layers)
    if (l < 0 || l >= num_layers) fail("lora: layer ", l, " is outside [0, ", num_layers, ")");
}

json LoraConfig::to_peft_json() const {
  json j;
  j["peft_type"] = "LORA";
  j["task_type"] = "CAUSAL_LM";
  j["r"] = r;
  j["lora_alpha"] = alpha;
  j["lora_dropout"] = dropout;
  j["target_modules"] = target_modules;
  j["layers_to_transform"] = layers.empty() ? json(nullptr) : json(layers);
  j["bias"] = "none";
  j["fan_in_fan_out"] = false;
  j["init_lora_weights"] = true;
  j["use_rslora"] = false;
  j["use_dora"] = false;
  j["modules_to_save"] = nullptr;
  return j;
}

namespace {

// "model.layers.12.self_attn.q_proj" -> 12; -1 outside the decoder layers.
int64_t layer_of(const std::string& module_path) {
  const std::string prefix = "model.layers.";
  if (module_path.rfind(prefix, 0) != 0) return -1;
  return std::stoll(module_path.substr(prefix.size(), module_path.find('.', prefix.size()) - prefix.size()));
}

std::string last_component(const std::string& path) {
  const auto dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

bool selected(const LoraConfig& c, const std::string& module_path) {
  const int64_t layer = layer_of(module_path);
  if (layer < 0) return false;
  if (std::find(c.target_modules.begin(), c.target_modules.end(), last_component(module_path)) == c.target_modules.end())
    return false;
  return c.layers.empty() || std::find(c.layers.begin(), c.layers.end(), layer) != c.layers.end();
}

template <class F>
void for_each_linear(Qwen2ForCausalLM& model, F f) {
  for (const auto& item : model->named_modules("", /*include_self=*/false))
    if (auto* lin = item.value()->as<LinearImpl>()) f(item.key(), *lin);
}

bool is_adapter_name(const std::string& name) {
  return name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos;
}

}  // namespace

int64_t lora_parameters(const Qwen2Config& m, const LoraConfig& c) {
  c.validate(m.num_hidden_layers);
  const int64_t h = m.hidden_size, kv = m.num_key_value_heads * m.head_dim(), i = m.intermediate_size;
  const std::map<std::string, std::pair<int64_t, int64_t>> shape = {
      {"q_proj", {h, h}},     {"k_proj", {h, kv}}, {"v_proj", {h, kv}},   {"o_proj", {h, h}},
      {"gate_proj", {h, i}},  {"up_proj", {h, i}}, {"down_proj", {i, h}},
  };
  int64_t per_layer = 0;
  for (const auto& t : c.target_modules) per_layer += c.r * (shape.at(t).first + shape.at(t).second);
  const int64_t layers = c.layers.empty() ? m.num_hidden_layers : static_cast<int64_t>(std::set<int64_t>(c.layers.begin(), c.layers.end()).size());
  return per_layer * layers;
}

int64_t apply_lora(Qwen2ForCausalLM& model, const LoraConfig& config) {
  config.validate(model->config().num_hidden_layers);
  int64_t added = 0;
  for_each_linear(model, [&](const std::string& path, LinearImpl& lin) {
    if (lin.has_adapter()) fail("apply_lora: '", path, "' already has a LoRA adapter");
    if (!selected(config, path)) return;
    lin.add_adapter(config.r, config.alpha, config.dropout, config.adapter_dtype);
    added += lin.lora_A->weight.numel() + lin.lora_B->weight.numel();
  });
  for (auto& kv : model->named_parameters()) kv.value().set_requires_grad(is_adapter_name(kv.key()));
  return added;
}

void set_adapters_enabled(Qwen2ForCausalLM& model, bool enabled) {
  for_each_linear(model, [&](const std::string&, LinearImpl& lin) {
    if (lin.has_adapter()) lin.set_adapter_enabled(enabled);
  });
}

void merge_adapters(Qwen2ForCausalLM& model) {
  for_each_linear(model, [](const std::string&, LinearImpl& lin) { lin.merge(); });
}

void unmerge_adapters(Qwen2ForCausalLM& model) {
  for_each_linear(model, [](const std::string&, LinearImpl& lin) { lin.unmerge(); });
}

std::vector<std::pair<std::string, torch::Tensor>> adapter_tensors(Qwen2ForCausalLM& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& kv : model->named_parameters())
    if (is_adapter_name(kv.key())) out.emplace_back("base_model.model." + kv.key(), kv.value());
  return out;
}

void save_adapter(Qwen2ForCausalLM& model, const LoraConfig& config, const std::string& dir) {
  const auto tensors = adapter_tensors(model);
  if (tensors.empty()) fail("save_adapter: the model has no LoRA adapters");
  AtomicDirectory out(dir, /*overwrite=*/true);
  write_tensors(out.path() + "/adapter_model.safetensors", tensors, std::nullopt);
  write_json_atomic(out.path() + "/adapter_config.json", config.to_peft_json());
  out.commit();
}

LoraConfig load_lora_config(const std::string& dir) {
  const std::string path = dir + "/adapter_config.json";
  const json j = parse_json(read_file(path), path);
  if (!j.is_object()) fail(path, ": expected a JSON object");
  auto need = [&](const char* key) -> const json& {
    if (!j.contains(key)) fail(path, ": missing key '", key, "'");
    return j.at(key);
  };
  if (need("peft_type") != "LORA") fail(path, ": peft_type ", j.at("peft_type").dump(), " is not supported (LORA only)");
  for (const char* flag : {"use_rslora", "use_dora"})
    if (j.contains(flag) && j.at(flag).is_boolean() && j.at(flag).get<bool>())
      fail(path, ": ", flag, " is not supported");
  if (j.contains("bias") && j.at("bias") != "none") fail(path, ": bias ", j.at("bias").dump(), " is not supported (\"none\" only)");
  LoraConfig c;
  try {
    c.r = need("r").get<int64_t>();
    c.alpha = need("lora_alpha").get<double>();
    c.dropout = j.value("lora_dropout", 0.0);
    const json& targets = need("target_modules");
    if (!targets.is_array()) fail(path, ": target_modules must be a list of module names, got ", targets.dump());
    c.target_modules = targets.get<std::vector<std::string>>();
    if (j.contains("layers_to_transform") && !j.at("layers_to_transform").is_null()) {
      const json& l = j.at("layers_to_transform");
      c.layers = l.is_array() ? l.get<std::vector<int64_t>>() : std::vector<int64_t>{l.get<int64_t>()};
    }
  } catch (const json::exception& e) {
    fail(path, ": ", e.what());
  }
  return c;
}

void load_adapter(Qwen2ForCausalLM& model, const std::string& dir) {
  const std::string path = dir + "/adapter_model.safetensors";
  if (!std::filesystem::exists(path)) fail(dir, ": no adapter_model.safetensors");
  const safetensors::MappedFile file(path);
  std::map<std::string, torch::Tensor> expected;
  for (const auto& kv : adapter_tensors(model)) expected.emplace(kv.first, kv.second);
  if (expected.empty()) fail("load_adapter: the model has no LoRA adapters (apply_lora first)");
  for (const auto& name : file.names())
    if (!expected.count(name)) fail(path, ": unexpected tensor '", name, "' (not an adapter of this model)");
  for (const auto& [name, param] : expected) {
    if (!file.has(name)) fail(path, ": adapter tensor '", name, "' is missing");
    copy_tensor(param, file, name);
  }
}

int64_t train_top_layers(Qwen2ForCausalLM& model, int64_t top_layers, bool train_lm_head) {
  const int64_t L = model->config().num_hidden_layers;
  if (top_layers < 0 || top_layers > L) fail("train_top_layers: ", top_layers, " is outside [0, ", L, "]");
  if (train_lm_head && model->config().tie_word_embeddings)
    fail("train_top_layers: lm_head is tied to the embedding; training it would train the whole embedding");
  int64_t trainable = 0;
  for (auto& kv : model->named_parameters()) {
    const std::string& name = kv.key();
    const int64_t layer = layer_of(name);
    const bool on = (layer >= L - top_layers) || (top_layers > 0 && name == "model.norm.weight") ||
                    (train_lm_head && name == "lm_head.weight");
    kv.value().set_requires_grad(on);
    if (on) trainable += kv.value().numel();
  }
  return trainable;
}

std::vector<std::pair<std::string, torch::Tensor>> trainable_parameters(Qwen2ForCausalLM& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& kv : model->named_parameters())
    if (kv.value().requires_grad()) out.emplace_back(kv.key(), kv.value());
  return out;
}

}  // namespace conductor::llm
