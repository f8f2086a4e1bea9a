// The transformer policy kind's settings: YAML parsing, JSON round trip. Split from
// transformer_model.cpp along its sections.
#include "policies/transformer_model.h"

#include <filesystem>

#include "core/error.h"
#include "core/json_util.h"
#include "llm/lora.h"

namespace conductor {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Settings

std::string TransformerSettings::tokenizer_path() const {
  if (!tokenizer.empty()) return tokenizer;
  return (fs::path(checkpoint) / "tokenizer.json").string();
}

json TransformerSettings::to_json() const {
  json j = {{"model", checkpoint.empty() ? json(model) : json(nullptr)},
            {"checkpoint", checkpoint},
            {"tokenizer", tokenizer},
            {"dtype", dtype},
            {"device", device},
            {"train_top_layers", train_top_layers},
            {"frozen_cache_mb", frozen_cache_mb},
            {"max_prompt_tokens", max_prompt_tokens}};
  j["lora"] = {{"enabled", lora},     {"r", lora_r},           {"alpha", lora_alpha},
               {"dropout", lora_dropout}, {"target_modules", lora_targets}, {"layers", lora_layers}};
  return j;
}

TransformerSettings TransformerSettings::from_json(const json& j, const std::string& source) {
  TransformerSettings s;
  try {
    if (!j.at("model").is_null()) s.model = j.at("model").get<std::string>();
    s.checkpoint = j.at("checkpoint").get<std::string>();
    s.tokenizer = j.at("tokenizer").get<std::string>();
    s.dtype = j.at("dtype").get<std::string>();
    s.device = j.at("device").get<std::string>();
    s.train_top_layers = j.at("train_top_layers").get<int>();
    s.frozen_cache_mb = j.at("frozen_cache_mb").get<int64_t>();
    s.max_prompt_tokens = j.at("max_prompt_tokens").get<int>();
    const json& l = j.at("lora");
    s.lora = l.at("enabled").get<bool>();
    s.lora_r = l.at("r").get<int>();
    s.lora_alpha = l.at("alpha").get<double>();
    s.lora_dropout = l.at("dropout").get<double>();
    s.lora_targets = l.at("target_modules").get<std::vector<std::string>>();
    s.lora_layers = l.at("layers").get<std::vector<int>>();
  } catch (const json::exception& e) {
    fail(source, ": invalid transformer policy settings: ", e.what());
  }
  return s;
}

std::shared_ptr<const TransformerSettings> TransformerSettings::parse(ConfigReader& r) {
  auto s = std::make_shared<TransformerSettings>();
  s->checkpoint = r.get<std::string>("checkpoint", "");
  if (!s->checkpoint.empty() && r.has("model"))
    r.fail_at("model", "give either 'model: PRESET' (random weights) or 'checkpoint: DIR', not both");
  if (s->checkpoint.empty()) {
    s->model = r.get<std::string>("model", s->model);
    const auto names = llm::Qwen2Config::preset_names();
    if (std::find(names.begin(), names.end(), s->model) == names.end()) {
      std::string known;
      for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
      r.fail_at("model", "unknown model preset '" + s->model + "' (known: " + known + ")");
    }
  } else if (!fs::is_directory(s->checkpoint)) {
    r.fail_at("checkpoint", "'" + s->checkpoint + "' is not a directory (an HF checkpoint: config.json + safetensors)");
  }
  s->tokenizer = r.get<std::string>("tokenizer", "");
  // Paths are kept absolute: checkpoints and exports read them from any working directory.
  if (!s->checkpoint.empty()) s->checkpoint = fs::absolute(s->checkpoint).lexically_normal().string();
  if (!s->tokenizer.empty()) s->tokenizer = fs::absolute(s->tokenizer).lexically_normal().string();
  if (s->tokenizer.empty() && s->checkpoint.empty())
    r.fail_at("tokenizer", "required with a preset: the tokenizer.json the model reads");
  if (!fs::is_regular_file(s->tokenizer_path()))
    r.fail_at(s->tokenizer.empty() ? "checkpoint" : "tokenizer", "no tokenizer file '" + s->tokenizer_path() + "'");
  s->dtype = r.get_choice("dtype", s->dtype, {"f32", "bf16", "f16"});
  s->device = r.get<std::string>("device", s->device);
  if (s->device != "cpu" && s->device.rfind("cuda", 0) != 0)
    r.fail_at("device", "expected cpu, cuda or cuda:N, got '" + s->device + "'");
  s->train_top_layers = r.get_in<int>("train_top_layers", s->train_top_layers, 0, 100000);
  s->frozen_cache_mb = r.get_in<int64_t>("frozen_cache_mb", s->frozen_cache_mb, 0, int64_t(1) << 30);
  {
    ConfigReader l = r.child("lora");
    s->lora = l.get<bool>("enabled", s->lora);
    s->lora_r = l.get_in<int>("r", s->lora_r, 1, 65536);
    s->lora_alpha = l.get_in<double>("alpha", s->lora_alpha, 1e-9, 1e9);
    s->lora_dropout = l.get_in<double>("dropout", s->lora_dropout, 0.0, 0.999);
    s->lora_targets = l.get<std::vector<std::string>>("target_modules", s->lora_targets);
    const auto& valid = llm::lora_target_names();
    for (const auto& t : s->lora_targets)
      if (std::find(valid.begin(), valid.end(), t) == valid.end()) {
        std::string known;
        for (const auto& n : valid) known += (known.empty() ? "" : ", ") + n;
        l.fail_at("target_modules", "unknown module '" + t + "' (known: " + known + ")");
      }
    s->lora_layers = l.get<std::vector<int>>("layers", s->lora_layers);
    l.finish();
  }
  s->max_prompt_tokens = r.get_in<int>("max_prompt_tokens", s->max_prompt_tokens, 64, 1 << 20);
  r.finish();
  return s;
}

}  // namespace conductor
