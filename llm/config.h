// Qwen2Config: the shape of a Qwen2-family decoder, read from and written to an HF config.json.
//
// Torch-free, so that memory arithmetic (`conductor model info`) needs no model. The fields are the
// config.json keys of transformers' Qwen2Config with the same meaning and the same defaults for the
// optional ones. Keys that would change the math and are not implemented (rope_scaling,
// sliding-window attention when enabled, another activation, mrope, quantization, ...) are refused by
// name; keys that do not change the forward pass (token ids, initializer_range, use_cache, ...) are
// accepted and listed in `ignored_keys`.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <utility>
#include <string>
#include <vector>

#include "core/json_util.h"

namespace conductor::llm {

// Weight / compute precision. Names as in config.json's torch_dtype ("bfloat16") or short ("bf16").
enum class DType { kF32, kBF16, kF16 };
DType parse_dtype(const std::string& s);  // throws conductor::Error listing the accepted names
const char* dtype_name(DType d);          // "f32", "bf16", "f16"
const char* hf_dtype_name(DType d);       // "float32", "bfloat16", "float16"
int64_t dtype_bytes(DType d);

// Typed values of a parsed config.json; `source` (the path) prefixes every error. An absent or null
// key gives the fallback; config_int without one (nullptr) fails with "missing key".
int64_t config_int(const json& j, const char* key, const std::string& source, const int64_t* fallback);
double config_number(const json& j, const char* key, const std::string& source, double fallback);
bool config_bool(const json& j, const char* key, const std::string& source, bool fallback);
// Fails "SOURCE: KEY must be a positive integer, got V" for the first value that is not positive.
void require_positive(const std::string& source, std::initializer_list<std::pair<const char*, int64_t>> values);

struct Qwen2Config {
  int64_t vocab_size = 0;               // required
  int64_t hidden_size = 0;              // required
  int64_t intermediate_size = 0;        // required (SwiGLU inner width)
  int64_t num_hidden_layers = 0;        // required
  int64_t num_attention_heads = 0;      // required
  int64_t num_key_value_heads = 0;      // default: num_attention_heads (no grouping)
  int64_t max_position_embeddings = 32768;  // default as in Qwen2Config; informative (rotary has no table)
  double rope_theta = 10000.0;          // default as in Qwen2Config
  double rms_norm_eps = 1e-6;           // default as in Qwen2Config
  bool tie_word_embeddings = false;     // default as in Qwen2Config
  DType torch_dtype = DType::kBF16;     // the dtype the weights were published in; default bfloat16
  double initializer_range = 0.02;      // std of the random initialization (HF _init_weights)
  std::vector<std::string> ignored_keys;  // config.json keys read and ignored (they change no math)

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  int64_t kv_groups() const { return num_attention_heads / num_key_value_heads; }

  // Exact number of parameters (lm_head counted only when untied).
  int64_t num_parameters() const;
  int64_t embedding_parameters() const { return vocab_size * hidden_size; }
  int64_t layer_parameters() const;  // one decoder layer
  // K and V of every layer for one token of one sequence.
  int64_t kv_cache_bytes_per_token(DType d) const;

  // Positive sizes, heads dividing the hidden size and KV heads dividing the heads; `source` prefixes
  // the message (a file name or "preset 'x'").
  void validate(const std::string& source) const;

  // Presets: tiny (tests, ~250K parameters), small (trains on a 2-core CPU), qwen2.5-0.5b,
  // qwen2.5-1.5b, qwen2.5-7b (the published shapes). Throws listing the names for an unknown one.
  static Qwen2Config preset(const std::string& name);
  static std::vector<std::string> preset_names();

  // From a parsed config.json; `source` (the path) prefixes every error.
  static Qwen2Config from_json(const json& j, const std::string& source);
  static Qwen2Config load(const std::string& config_json_path);
  // config.json in HF layout: architectures ["Qwen2ForCausalLM"], model_type "qwen2", every field.
  json to_json() const;
};

}  // namespace conductor::llm
