#include "llm/lora.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "artifacts/safetensors.h"
#include "core/atomic_dir.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "llm/hf_checkpoint.h"
#include "llm/qwen2.h"

namespace conductor::llm {

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
