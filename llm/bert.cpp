#include "llm/bert.h"

#include <cmath>
#include <limits>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "llm/config.h"

namespace conductor::llm {

int64_t BertConfig::num_parameters() const {
  const int64_t h = hidden_size, i = intermediate_size;
  const int64_t embeddings = (vocab_size + max_position_embeddings + type_vocab_size) * h + 2 * h;
  const int64_t layer = 4 * (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h;
  return embeddings + num_hidden_layers * layer;
}

void BertConfig::validate(const std::string& source) const {
  require_positive(source, {{"vocab_size", vocab_size},
                            {"hidden_size", hidden_size},
                            {"num_hidden_layers", num_hidden_layers},
                            {"num_attention_heads", num_attention_heads},
                            {"intermediate_size", intermediate_size},
                            {"max_position_embeddings", max_position_embeddings},
                            {"type_vocab_size", type_vocab_size}});
  if (hidden_size % num_attention_heads != 0)
    fail(source, ": hidden_size ", hidden_size, " is not a multiple of num_attention_heads ", num_attention_heads);
  if (!(layer_norm_eps > 0)) fail(source, ": layer_norm_eps must be positive, got ", layer_norm_eps);
}

BertConfig BertConfig::from_json(const json& j, const std::string& source) {
  if (!j.is_object()) fail(source, ": expected a JSON object");
  auto find = [&](const char* key) -> const json* {
    auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  };
  // The architecture, by name: model_type when present, else the architectures list.
  if (const json* mt = find("model_type")) {
    if (*mt != "bert")
      fail(source, ": model_type ", mt->dump(), " is not supported: this sentence encoder implements BERT "
           "(model_type \"bert\"; e.g. sentence-transformers/all-MiniLM-L6-v2)");
  } else if (const json* arch = find("architectures")) {
    if (!arch->is_array() || arch->empty()) fail(source, ": 'architectures' must be a non-empty list, got ", arch->dump());
    for (const auto& a : *arch)
      if (!a.is_string() || a.get<std::string>().rfind("Bert", 0) != 0)
        fail(source, ": architecture ", a.dump(), " is not supported: this sentence encoder implements BERT (BertModel)");
  } else {
    fail(source, ": neither 'model_type' nor 'architectures' says what model this is (expected model_type \"bert\")");
  }
  if (const json* arch = find("architectures")) {
    if (!arch->is_array()) fail(source, ": 'architectures' must be a list, got ", arch->dump());
    for (const auto& a : *arch)
      if (!a.is_string() || a.get<std::string>().rfind("Bert", 0) != 0)
        fail(source, ": architecture ", a.dump(), " is not supported: this sentence encoder implements BERT (BertModel)");
  }

  std::set<std::string> used = {"model_type", "architectures"};
  BertConfig c;
  for (const char* k : {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                        "max_position_embeddings", "type_vocab_size", "layer_norm_eps"})
    used.insert(k);
  c.vocab_size = config_int(j, "vocab_size", source, nullptr);
  c.hidden_size = config_int(j, "hidden_size", source, nullptr);
  c.num_hidden_layers = config_int(j, "num_hidden_layers", source, nullptr);
  c.num_attention_heads = config_int(j, "num_attention_heads", source, nullptr);
  c.intermediate_size = config_int(j, "intermediate_size", source, nullptr);
  const int64_t default_positions = 512, default_types = 2;
  c.max_position_embeddings = config_int(j, "max_position_embeddings", source, &default_positions);
  c.type_vocab_size = config_int(j, "type_vocab_size", source, &default_types);
  c.layer_norm_eps = config_number(j, "layer_norm_eps", source, 1e-12);

  // Keys that change the math: accepted only at the values implemented.
  used.insert("hidden_act");
  if (const json* v = find("hidden_act"); v != nullptr && *v != "gelu")
    fail(source, ": hidden_act ", v->dump(), " is not supported (only \"gelu\", the exact erf GELU of BERT)");
  used.insert("position_embedding_type");
  if (const json* v = find("position_embedding_type"); v != nullptr && *v != "absolute")
    fail(source, ": position_embedding_type ", v->dump(), " is not supported (only \"absolute\")");
  for (const char* k : {"is_decoder", "add_cross_attention"}) {
    used.insert(k);
    if (config_bool(j, k, source, false)) fail(source, ": ", k, " is true: only the bidirectional encoder is supported");
  }
  used.insert("quantization_config");
  if (find("quantization_config") != nullptr)
    fail(source, ": quantization_config is present: quantized checkpoints are not supported (bf16, f16, f32 only)");
  for (const auto& [k, v] : j.items())
    if (!used.count(k)) c.ignored_keys.push_back(k);
  c.validate(source);
  return c;
}

BertConfig BertConfig::load(const std::string& path) { return from_json(parse_json(read_file(path), path), path); }

// ---- modules ----

namespace {
torch::nn::LayerNorm layer_norm(const BertConfig& c, const torch::TensorOptions& options) {
  torch::nn::LayerNorm ln(torch::nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps));
  ln->to(options.device());
  return ln;
}
}  // namespace

BertEmbeddingsImpl::BertEmbeddingsImpl(const BertConfig& c, const torch::TensorOptions& options) {
  word_embeddings = register_parameter("word_embeddings", torch::empty({c.vocab_size, c.hidden_size}, options));
  position_embeddings = register_parameter("position_embeddings", torch::empty({c.max_position_embeddings, c.hidden_size}, options));
  token_type_embeddings = register_parameter("token_type_embeddings", torch::empty({c.type_vocab_size, c.hidden_size}, options));
  LayerNorm = register_module("LayerNorm", layer_norm(c, options));
}

torch::Tensor BertEmbeddingsImpl::forward(const torch::Tensor& input_ids) {
  const int64_t T = input_ids.size(1);
  // The same sum order as transformers: (word + token type) + position.
  torch::Tensor e = torch::embedding(word_embeddings, input_ids) + token_type_embeddings[0];
  e = e + position_embeddings.narrow(0, 0, T);
  return LayerNorm(e);
}

BertLayerImpl::BertLayerImpl(const BertConfig& c, const torch::TensorOptions& options)
    : heads_(c.num_attention_heads), head_dim_(c.head_dim()) {
  const int64_t h = c.hidden_size, i = c.intermediate_size;
  query = register_module("query", Linear(h, h, true, options));
  key = register_module("key", Linear(h, h, true, options));
  value = register_module("value", Linear(h, h, true, options));
  attention_dense = register_module("attention_dense", Linear(h, h, true, options));
  attention_norm = register_module("attention_norm", layer_norm(c, options));
  intermediate = register_module("intermediate", Linear(h, i, true, options));
  output = register_module("output", Linear(i, h, true, options));
  output_norm = register_module("output_norm", layer_norm(c, options));
}

torch::Tensor BertLayerImpl::forward(const torch::Tensor& h, const torch::Tensor& key_bias) {
  const int64_t B = h.size(0), T = h.size(1);
  auto heads = [&](const torch::Tensor& x) { return x.view({B, T, heads_, head_dim_}).transpose(1, 2); };
  const torch::Tensor q = heads(query(h)), k = heads(key(h)), v = heads(value(h));
  torch::Tensor scores = torch::matmul(q, k.transpose(-1, -2)).mul_(1.0 / std::sqrt(static_cast<double>(head_dim_)));
  if (key_bias.defined()) scores.add_(key_bias);
  const torch::Tensor context =
      torch::matmul(torch::softmax(scores, -1), v).transpose(1, 2).reshape({B, T, heads_ * head_dim_});
  const torch::Tensor a = attention_norm(attention_dense(context) + h);
  return output_norm(output(torch::gelu(intermediate(a))) + a);
}

BertModelImpl::BertModelImpl(const BertConfig& config, const torch::Device& device) : config_(config), device_(device) {
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  embeddings = register_module("embeddings", BertEmbeddings(config, options));
  for (int64_t l = 0; l < config.num_hidden_layers; ++l)
    layers.push_back(register_module("layer" + std::to_string(l), BertLayer(config, options)));
}

torch::Tensor BertModelImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  CONDUCTOR_CHECK(input_ids.dim() == 2 && attention_mask.sizes() == input_ids.sizes(), "ids ", input_ids.sizes(),
                  " mask ", attention_mask.sizes());
  if (input_ids.size(1) > config_.max_position_embeddings)
    fail("a sequence of ", input_ids.size(1), " tokens is longer than the model's max_position_embeddings ",
         config_.max_position_embeddings);
  const torch::Tensor ids = input_ids.to(device_, torch::kInt64);
  // Padding keys: the lowest float added to their scores (exp() of it is exactly 0 next to a real key).
  torch::Tensor key_bias;
  const torch::Tensor real = attention_mask.to(device_).ne(0);
  if (!real.all().item<bool>()) {
    key_bias = torch::zeros(real.sizes(), torch::TensorOptions().dtype(torch::kFloat32).device(device_))
                   .masked_fill_(real.logical_not(), std::numeric_limits<float>::lowest())
                   .view({real.size(0), 1, 1, real.size(1)});
  }
  torch::Tensor h = embeddings(ids);
  for (auto& layer : layers) h = layer(h, key_bias);
  return h;
}

std::vector<std::pair<std::string, torch::Tensor>> bert_named_weights(BertModel& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  auto& e = *model->embeddings;
  out.emplace_back("embeddings.word_embeddings.weight", e.word_embeddings);
  out.emplace_back("embeddings.position_embeddings.weight", e.position_embeddings);
  out.emplace_back("embeddings.token_type_embeddings.weight", e.token_type_embeddings);
  out.emplace_back("embeddings.LayerNorm.weight", e.LayerNorm->weight);
  out.emplace_back("embeddings.LayerNorm.bias", e.LayerNorm->bias);
  for (std::size_t l = 0; l < model->layers.size(); ++l) {
    auto& L = *model->layers[l];
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    auto linear = [&](const std::string& name, Linear& lin) {
      out.emplace_back(p + name + ".weight", lin->weight);
      out.emplace_back(p + name + ".bias", lin->bias);
    };
    auto norm = [&](const std::string& name, torch::nn::LayerNorm& ln) {
      out.emplace_back(p + name + ".weight", ln->weight);
      out.emplace_back(p + name + ".bias", ln->bias);
    };
    linear("attention.self.query", L.query);
    linear("attention.self.key", L.key);
    linear("attention.self.value", L.value);
    linear("attention.output.dense", L.attention_dense);
    norm("attention.output.LayerNorm", L.attention_norm);
    linear("intermediate.dense", L.intermediate);
    linear("output.dense", L.output);
    norm("output.LayerNorm", L.output_norm);
  }
  return out;
}

void load_bert_weights(BertModel& model, const std::string& dir) {
  const CheckpointFiles cf = open_checkpoint_files(dir);
  const std::string prefix = cf.shard_of.count("bert.embeddings.word_embeddings.weight") ? "bert." : "";
  std::vector<std::pair<std::string, torch::Tensor>> tensors;  // checkpoint name -> parameter, model order
  for (auto& [name, param] : bert_named_weights(model)) tensors.emplace_back(prefix + name, param);
  const std::map<std::string, torch::Tensor> by_name(tensors.begin(), tensors.end());
  for (const auto& [name, shard] : cf.shard_of) {
    if (by_name.count(name)) continue;
    const bool ours = name.compare(0, prefix.size(), prefix) == 0;
    const std::string rest = ours ? name.substr(prefix.size()) : name;
    if (ours && (rest.rfind("pooler.", 0) == 0 || rest == "embeddings.position_ids")) continue;  // unused by an encoder
    if (!prefix.empty() && !ours && name.rfind("cls.", 0) == 0) continue;  // a BertFor* head
    fail(cf.files.at(shard)->path(), ": unexpected tensor '", name, "' (not a parameter of BertModel with this config.json",
         prefix.empty() ? "" : "; the other tensors carry the prefix 'bert.'", ")");
  }
  for (const auto& [name, param] : tensors)
    if (!cf.shard_of.count(name)) fail(cf.source, ": tensor '", name, "' is missing (config.json: ", model->config().num_hidden_layers,
                                       " layers, hidden ", model->config().hidden_size, ")");
  copy_checkpoint_tensors(cf, tensors);
}

}  // namespace conductor::llm
