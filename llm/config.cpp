#include "llm/config.h"

#include <algorithm>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"

namespace conductor::llm {

DType parse_dtype(const std::string& s) {
  if (s == "f32" || s == "float32" || s == "fp32") return DType::kF32;
  if (s == "bf16" || s == "bfloat16") return DType::kBF16;
  if (s == "f16" || s == "float16" || s == "fp16") return DType::kF16;
  fail("unknown dtype '", s, "' (accepted: f32/float32, bf16/bfloat16, f16/float16)");
}

const char* dtype_name(DType d) {
  switch (d) {
    case DType::kF32: return "f32";
    case DType::kBF16: return "bf16";
    case DType::kF16: return "f16";
  }
  CONDUCTOR_CHECK(false, "dtype enum ", static_cast<int>(d));
}

const char* hf_dtype_name(DType d) {
  switch (d) {
    case DType::kF32: return "float32";
    case DType::kBF16: return "bfloat16";
    case DType::kF16: return "float16";
  }
  CONDUCTOR_CHECK(false, "dtype enum ", static_cast<int>(d));
}

int64_t dtype_bytes(DType d) { return d == DType::kF32 ? 4 : 2; }

int64_t Qwen2Config::layer_parameters() const {
  const int64_t h = hidden_size, kv = num_key_value_heads * head_dim();
  const int64_t attention = (h * h + h) + 2 * (h * kv + kv) + h * h;  // q, k, v with biases; o without
  const int64_t mlp = 3 * h * intermediate_size;                    // gate, up, down
  const int64_t norms = 2 * h;                                      // input / post-attention RMSNorm
  return attention + mlp + norms;
}

int64_t Qwen2Config::num_parameters() const {
  const int64_t head = tie_word_embeddings ? 0 : embedding_parameters();
  return embedding_parameters() + num_hidden_layers * layer_parameters() + hidden_size + head;
}

int64_t Qwen2Config::kv_cache_bytes_per_token(DType d) const {
  return 2 * num_hidden_layers * num_key_value_heads * head_dim() * dtype_bytes(d);
}

void require_positive(const std::string& source, std::initializer_list<std::pair<const char*, int64_t>> values) {
  for (const auto& [key, v] : values)
    if (v <= 0) fail(source, ": ", key, " must be a positive integer, got ", v);
}

void Qwen2Config::validate(const std::string& source) const {
  require_positive(source, {{"vocab_size", vocab_size},
                            {"hidden_size", hidden_size},
                            {"intermediate_size", intermediate_size},
                            {"num_hidden_layers", num_hidden_layers},
                            {"num_attention_heads", num_attention_heads},
                            {"num_key_value_heads", num_key_value_heads},
                            {"max_position_embeddings", max_position_embeddings}});
  if (hidden_size % num_attention_heads != 0)
    fail(source, ": hidden_size ", hidden_size, " is not a multiple of num_attention_heads ", num_attention_heads);
  if (head_dim() % 2 != 0) fail(source, ": head dimension ", head_dim(), " must be even (rotary embeddings)");
  if (num_attention_heads % num_key_value_heads != 0)
    fail(source, ": num_attention_heads ", num_attention_heads, " is not a multiple of num_key_value_heads ",
         num_key_value_heads);
  if (!(rope_theta > 0)) fail(source, ": rope_theta must be positive, got ", rope_theta);
  if (!(rms_norm_eps > 0)) fail(source, ": rms_norm_eps must be positive, got ", rms_norm_eps);
  if (!(initializer_range > 0)) fail(source, ": initializer_range must be positive, got ", initializer_range);
}

namespace {

Qwen2Config make(int64_t vocab, int64_t hidden, int64_t inter, int64_t layers, int64_t heads, int64_t kv_heads,
                 int64_t max_pos, double theta, bool tied) {
  Qwen2Config c;
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.intermediate_size = inter;
  c.num_hidden_layers = layers;
  c.num_attention_heads = heads;
  c.num_key_value_heads = kv_heads;
  c.max_position_embeddings = max_pos;
  c.rope_theta = theta;
  c.rms_norm_eps = 1e-6;
  c.tie_word_embeddings = tied;
  c.torch_dtype = DType::kBF16;
  return c;
}

// The published shapes are those of the config.json files of Qwen/Qwen2.5-{0.5B,1.5B,7B} on the
// Hugging Face hub; the parameter counts 494032768 (0.5B) and 7615616512 (7B) follow from them.
const std::vector<std::pair<std::string, Qwen2Config>>& presets() {
  static const std::vector<std::pair<std::string, Qwen2Config>> p = {
      // Tests: 4 layers, grouped-query attention (4 heads, 2 KV heads), tied; ~251K parameters.
      {"tiny", make(1024, 64, 176, 4, 4, 2, 2048, 10000.0, true)},
      // Trains on a 2-core CPU. The Qwen2.5 vocabulary (so the Qwen tokenizer's ids fit): the tied
      // embedding is 39M of its 42M parameters, the 4 layers 3.1M.
      {"small", make(151936, 256, 768, 4, 4, 2, 4096, 1000000.0, true)},
      {"qwen2.5-0.5b", make(151936, 896, 4864, 24, 14, 2, 32768, 1000000.0, true)},
      {"qwen2.5-1.5b", make(151936, 1536, 8960, 28, 12, 2, 131072, 1000000.0, true)},
      {"qwen2.5-7b", make(152064, 3584, 18944, 28, 28, 4, 131072, 1000000.0, false)},
  };
  return p;
}

const json* find(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

// A rope_scaling / rope_parameters object is accepted only when it asks for plain rotary embeddings.
void check_default_rope(const json& v, const char* key, const std::string& source) {
  if (v.is_null()) return;
  std::string type;
  if (v.is_object()) {
    for (const char* k : {"rope_type", "type"}) {
      const json* t = find(v, k);
      if (t != nullptr && t->is_string()) type = t->get<std::string>();
    }
  }
  if (type != "default")
    fail(source, ": '", key, "' = ", v.dump(), " is not supported: only plain rotary embeddings (no scaling) are "
         "implemented; remove the key or set it to null");
}

}  // namespace

int64_t config_int(const json& j, const char* key, const std::string& source, const int64_t* fallback) {
  const json* v = find(j, key);
  if (v == nullptr || v->is_null()) {
    if (fallback == nullptr) fail(source, ": missing key '", key, "'");
    return *fallback;
  }
  if (!v->is_number_integer()) fail(source, ": '", key, "' must be an integer, got ", v->dump());
  return v->get<int64_t>();
}

double config_number(const json& j, const char* key, const std::string& source, double fallback) {
  const json* v = find(j, key);
  if (v == nullptr || v->is_null()) return fallback;
  if (!v->is_number()) fail(source, ": '", key, "' must be a number, got ", v->dump());
  return v->get<double>();
}

bool config_bool(const json& j, const char* key, const std::string& source, bool fallback) {
  const json* v = find(j, key);
  if (v == nullptr || v->is_null()) return fallback;
  if (!v->is_boolean()) fail(source, ": '", key, "' must be true or false, got ", v->dump());
  return v->get<bool>();
}

std::vector<std::string> Qwen2Config::preset_names() {
  std::vector<std::string> names;
  for (const auto& p : presets()) names.push_back(p.first);
  return names;
}

Qwen2Config Qwen2Config::preset(const std::string& name) {
  std::string known;
  for (const auto& p : presets()) {
    if (p.first == name) return p.second;
    known += (known.empty() ? "" : ", ") + p.first;
  }
  fail("unknown model preset '", name, "' (known: ", known, ")");
}

Qwen2Config Qwen2Config::from_json(const json& j, const std::string& source) {
  if (!j.is_object()) fail(source, ": expected a JSON object");
  std::set<std::string> used;
  auto use = [&](const char* key) {
    used.insert(key);
    return find(j, key);
  };

  // The architecture, by name.
  const json* arch = use("architectures");
  if (arch == nullptr) fail(source, ": missing key 'architectures' (expected [\"Qwen2ForCausalLM\"])");
  if (!arch->is_array() || arch->empty()) fail(source, ": 'architectures' must be a non-empty list, got ", arch->dump());
  for (const auto& a : *arch)
    if (!a.is_string() || a.get<std::string>() != "Qwen2ForCausalLM")
      fail(source, ": architecture ", a.dump(), " is not supported: this model implements Qwen2ForCausalLM only");
  if (const json* mt = use("model_type"); mt != nullptr && *mt != "qwen2")
    fail(source, ": model_type ", mt->dump(), " is not supported (expected \"qwen2\")");

  Qwen2Config c;
  for (const char* k : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                        "num_key_value_heads", "max_position_embeddings", "rope_theta", "rms_norm_eps",
                        "tie_word_embeddings", "initializer_range", "torch_dtype", "dtype"})
    used.insert(k);
  c.vocab_size = config_int(j, "vocab_size", source, nullptr);
  c.hidden_size = config_int(j, "hidden_size", source, nullptr);
  c.intermediate_size = config_int(j, "intermediate_size", source, nullptr);
  c.num_hidden_layers = config_int(j, "num_hidden_layers", source, nullptr);
  c.num_attention_heads = config_int(j, "num_attention_heads", source, nullptr);
  c.num_key_value_heads = config_int(j, "num_key_value_heads", source, &c.num_attention_heads);
  const int64_t default_max_pos = 32768;
  c.max_position_embeddings = config_int(j, "max_position_embeddings", source, &default_max_pos);
  c.rope_theta = config_number(j, "rope_theta", source, 10000.0);
  c.rms_norm_eps = config_number(j, "rms_norm_eps", source, 1e-6);
  c.tie_word_embeddings = config_bool(j, "tie_word_embeddings", source, false);
  c.initializer_range = config_number(j, "initializer_range", source, 0.02);
  for (const char* k : {"torch_dtype", "dtype"}) {  // transformers >= 4.56 writes "dtype"
    const json* d = find(j, k);
    if (d == nullptr || d->is_null()) continue;
    if (!d->is_string()) fail(source, ": '", k, "' must be a string, got ", d->dump());
    try {
      c.torch_dtype = parse_dtype(d->get<std::string>());
    } catch (const Error& e) {
      fail(source, ": '", k, "': ", e.what());
    }
  }

  // Keys that change the math: accepted only at the values this implementation computes.
  if (const json* v = use("hidden_act"); v != nullptr && *v != "silu")
    fail(source, ": hidden_act ", v->dump(), " is not supported (the Qwen2 MLP uses \"silu\")");
  if (const json* v = use("rope_scaling")) check_default_rope(*v, "rope_scaling", source);
  if (const json* v = use("rope_parameters")) {  // transformers v5 layout: {"rope_type": ..., "rope_theta": ...}
    check_default_rope(*v, "rope_parameters", source);
    if (v->is_object()) c.rope_theta = config_number(*v, "rope_theta", source + ": rope_parameters", c.rope_theta);
  }
  if (config_bool(j, "use_sliding_window", source, false))
    fail(source, ": use_sliding_window is true: sliding-window attention is not supported (full causal attention "
         "only); set it to false");
  used.insert("use_sliding_window");
  if (const json* v = use("layer_types"); v != nullptr && !v->is_null()) {
    if (!v->is_array()) fail(source, ": 'layer_types' must be a list, got ", v->dump());
    for (std::size_t i = 0; i < v->size(); ++i)
      if ((*v)[i] != "full_attention")
        fail(source, ": layer_types[", i, "] = ", (*v)[i].dump(), " is not supported (full_attention only)");
  }
  if (const double p = config_number(j, "attention_dropout", source, 0.0); p != 0.0)
    fail(source, ": attention_dropout ", p, " is not supported (0 only)");
  used.insert("attention_dropout");
  if (config_bool(j, "use_mrope", source, false)) fail(source, ": use_mrope is true: multimodal rotary is not supported");
  used.insert("use_mrope");
  if (const json* v = use("quantization_config"); v != nullptr && !v->is_null())
    fail(source, ": quantization_config is present: quantized checkpoints are not supported (bf16, f16, f32 only)");
  if (const json* v = use("head_dim"); v != nullptr && !v->is_null()) {
    if (!v->is_number_integer() || c.num_attention_heads <= 0 ||
        v->get<int64_t>() != c.hidden_size / c.num_attention_heads)
      fail(source, ": head_dim ", v->dump(), " is not supported: it must equal hidden_size / num_attention_heads");
  }
  if (!config_bool(j, "attention_bias", source, true))
    fail(source, ": attention_bias false is not supported (Qwen2 q/k/v projections have biases)");
  used.insert("attention_bias");
  if (config_bool(j, "mlp_bias", source, false)) fail(source, ": mlp_bias true is not supported (Qwen2's MLP has none)");
  used.insert("mlp_bias");

  for (const auto& [k, v] : j.items())
    if (!used.count(k)) c.ignored_keys.push_back(k);
  c.validate(source);
  return c;
}

Qwen2Config Qwen2Config::load(const std::string& path) {
  return from_json(parse_json(read_file(path), path), path);
}

json Qwen2Config::to_json() const {
  json j = json::object();
  j["architectures"] = {"Qwen2ForCausalLM"};
  j["attention_dropout"] = 0.0;
  j["hidden_act"] = "silu";
  j["hidden_size"] = hidden_size;
  j["initializer_range"] = initializer_range;
  j["intermediate_size"] = intermediate_size;
  j["max_position_embeddings"] = max_position_embeddings;
  j["max_window_layers"] = num_hidden_layers;
  j["model_type"] = "qwen2";
  j["num_attention_heads"] = num_attention_heads;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_key_value_heads"] = num_key_value_heads;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_scaling"] = nullptr;
  j["rope_theta"] = rope_theta;
  j["sliding_window"] = nullptr;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["torch_dtype"] = hf_dtype_name(torch_dtype);
  j["use_cache"] = true;
  j["use_sliding_window"] = false;
  j["vocab_size"] = vocab_size;
  return j;
}

}  // namespace conductor::llm
