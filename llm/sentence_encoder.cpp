#include "llm/sentence_encoder.h"

#include <algorithm>
#include <filesystem>
#include <numeric>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_util.h"

namespace conductor::llm {

namespace fs = std::filesystem;

const char* pooling_mode_name(PoolingMode m) {
  switch (m) {
    case PoolingMode::kCls: return "cls";
    case PoolingMode::kMax: return "max";
    case PoolingMode::kMean: return "mean";
    case PoolingMode::kMeanSqrtLen: return "mean_sqrt_len_tokens";
  }
  CONDUCTOR_CHECK(false, "pooling mode ", static_cast<int>(m));
}

namespace {

json read_json_file(const std::string& path) { return parse_json(read_file(path), path); }

const json* find(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

std::string last_component(const std::string& type) {
  const auto dot = type.rfind('.');
  return dot == std::string::npos ? type : type.substr(dot + 1);
}

PoolingMode parse_mode(const json& v, const std::string& where) {
  if (!v.is_string()) fail(where, ": expected a pooling mode name, got ", v.dump());
  const std::string m = v.get<std::string>();
  if (m == "cls") return PoolingMode::kCls;
  if (m == "max") return PoolingMode::kMax;
  if (m == "mean") return PoolingMode::kMean;
  if (m == "mean_sqrt_len_tokens") return PoolingMode::kMeanSqrtLen;
  fail(where, ": pooling mode \"", m, "\" is not supported (cls, max, mean, mean_sqrt_len_tokens)");
}

// <pooling path>/config.json in either layout; checks the dimension against the model.
std::vector<PoolingMode> read_pooling(const std::string& path, int64_t hidden) {
  if (!fs::exists(path)) fail(path, ": missing (the Pooling module's configuration)");
  const json j = read_json_file(path);
  if (!j.is_object()) fail(path, ": expected a JSON object");
  std::vector<PoolingMode> modes;
  const char* dim_key = nullptr;
  if (const json* m = find(j, "pooling_mode")) {  // sentence-transformers >= 5
    dim_key = "embedding_dimension";
    if (m->is_array()) {
      for (std::size_t i = 0; i < m->size(); ++i) modes.push_back(parse_mode((*m)[i], path + ": pooling_mode[" + std::to_string(i) + "]"));
    } else {
      modes.push_back(parse_mode(*m, path + ": pooling_mode"));
    }
  } else {  // the 2.x booleans, in sentence-transformers' concatenation order
    dim_key = "word_embedding_dimension";
    const std::pair<const char*, PoolingMode> legacy[] = {{"pooling_mode_cls_token", PoolingMode::kCls},
                                                          {"pooling_mode_max_tokens", PoolingMode::kMax},
                                                          {"pooling_mode_mean_tokens", PoolingMode::kMean},
                                                          {"pooling_mode_mean_sqrt_len_tokens", PoolingMode::kMeanSqrtLen}};
    for (const auto& [key, mode] : legacy)
      if (config_bool(j, key, path, false)) modes.push_back(mode);
    for (const char* key : {"pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"})
      if (config_bool(j, key, path, false)) fail(path, ": ", key, " is true: this pooling is not supported (cls, max, mean, mean_sqrt_len only)");
  }
  if (modes.empty()) fail(path, ": no pooling mode is enabled (expected pooling_mode, e.g. \"mean\")");
  for (std::size_t i = 0; i < modes.size(); ++i)
    for (std::size_t k = 0; k < i; ++k)
      if (modes[i] == modes[k]) fail(path, ": pooling mode \"", pooling_mode_name(modes[i]), "\" is listed twice");
  const int64_t dim = config_int(j, dim_key, path, &hidden);
  if (dim != hidden) fail(path, ": ", dim_key, " ", dim, " does not match the model's hidden_size ", hidden);
  return modes;
}

// config_sentence_transformers.json: refuses what would make encode() differ (a default prompt, another
// model kind).
void check_st_config(const std::string& path) {
  if (!fs::exists(path)) return;
  const json j = read_json_file(path);
  if (!j.is_object()) fail(path, ": expected a JSON object");
  if (const json* t = find(j, "model_type"); t != nullptr && *t != "SentenceTransformer")
    fail(path, ": model_type ", t->dump(), " is not supported (only \"SentenceTransformer\" embedding models)");
  if (const json* p = find(j, "default_prompt_name"))
    fail(path, ": default_prompt_name ", p->dump(), " is set: prompts are not supported (the encoder embeds the text "
         "as given); set it to null");
}

// sentence_bert_config.json and tokenizer_config.json: the maximum sequence length.
int64_t read_max_seq_length(const std::string& model_dir, const BertConfig& config) {
  const std::string sbc = (fs::path(model_dir) / "sentence_bert_config.json").string();
  if (fs::exists(sbc)) {
    const json j = read_json_file(sbc);
    if (!j.is_object()) fail(sbc, ": expected a JSON object");
    if (config_bool(j, "do_lower_case", sbc, false))
      fail(sbc, ": do_lower_case true is not supported (sentence-transformers' extra Python lower-casing); the "
           "tokenizer's own lowercase applies");
    if (const json* t = find(j, "transformer_task"); t != nullptr && *t != "feature-extraction")
      fail(sbc, ": transformer_task ", t->dump(), " is not supported (only \"feature-extraction\")");
    if (const json* m = find(j, "modality_config")) {
      const json* text = m->is_object() ? find(*m, "text") : nullptr;
      const json* out = text != nullptr && text->is_object() ? find(*text, "method_output_name") : nullptr;
      if (out == nullptr || *out != "last_hidden_state")
        fail(sbc, ": modality_config ", m->dump(), " is not supported (text through forward's last_hidden_state only)");
    }
    if (const json* p = find(j, "processing_kwargs"); p != nullptr && !(p->is_object() && p->empty()))
      fail(sbc, ": processing_kwargs ", p->dump(), " is not supported");
    if (const json* v = find(j, "max_seq_length")) {
      if (!v->is_number_integer() || v->get<int64_t>() < 2)
        fail(sbc, ": max_seq_length must be an integer >= 2, got ", v->dump());
      const int64_t n = v->get<int64_t>();
      if (n > config.max_position_embeddings)
        fail(sbc, ": max_seq_length ", n, " exceeds the model's max_position_embeddings ", config.max_position_embeddings);
      return n;
    }
  }
  // sentence-transformers >= 5 keeps the length as the tokenizer's model_max_length.
  const std::string tc = (fs::path(model_dir) / "tokenizer_config.json").string();
  if (fs::exists(tc)) {
    const json j = read_json_file(tc);
    if (const json* v = j.is_object() ? find(j, "model_max_length") : nullptr) {
      if (!v->is_number()) fail(tc, ": model_max_length must be a number, got ", v->dump());
      const double n = v->get<double>();
      if (n < 2) fail(tc, ": model_max_length must be >= 2, got ", v->dump());
      return std::min<int64_t>(config.max_position_embeddings, n > 1e12 ? config.max_position_embeddings : static_cast<int64_t>(n));
    }
  }
  return config.max_position_embeddings;
}

}  // namespace

SentenceEncoder SentenceEncoder::load(const std::string& dir, const torch::Device& device) {
  if (!fs::is_directory(dir)) fail("sentence encoder '", dir, "' is not a directory");
  const std::string modules_path = (fs::path(dir) / "modules.json").string();
  if (!fs::exists(modules_path))
    fail(dir, ": no modules.json (a sentence-transformers directory lists its modules there: Transformer, Pooling, "
         "Normalize)");
  const json modules = read_json_file(modules_path);
  if (!modules.is_array() || modules.empty()) fail(modules_path, ": expected a non-empty list of modules");

  SentenceEncoderInfo info;
  info.dir = dir;
  std::string model_dir, pooling_dir;
  for (std::size_t i = 0; i < modules.size(); ++i) {
    const json& m = modules[i];
    const std::string where = modules_path + ": [" + std::to_string(i) + "]";
    if (!m.is_object()) fail(where, ": expected an object {idx, name, path, type}");
    const json* type = find(m, "type");
    const json* path = find(m, "path");
    if (type == nullptr || !type->is_string()) fail(where, ": missing string 'type'");
    if (path == nullptr || !path->is_string()) fail(where, ": missing string 'path'");
    const std::string kind = last_component(type->get<std::string>());
    const std::string p = path->get<std::string>();
    if (p.find("..") != std::string::npos || (!p.empty() && p[0] == '/'))
      fail(where, ": path '", p, "' must be a folder inside ", dir);
    const std::string expected = i == 0 ? "Transformer" : i == 1 ? "Pooling" : "Normalize";
    if (kind != expected || i > 2)
      fail(where, ": module ", type->dump(), " is not supported here: expected the pipeline Transformer, Pooling, "
           "optional Normalize (found \"", kind, "\" at position ", i, ")");
    if (i == 0) model_dir = (fs::path(dir) / p).string();
    if (i == 1) pooling_dir = (fs::path(dir) / p).string();
    if (i == 2) {
      info.normalize = true;
      const std::string nc = (fs::path(dir) / p / "config.json").string();
      if (fs::exists(nc)) {
        const json j = read_json_file(nc);
        for (const char* key : {"module_input_name", "module_output_name"})
          if (const json* v = j.is_object() ? find(j, key) : nullptr; v != nullptr && *v != "sentence_embedding")
            fail(nc, ": ", key, " ", v->dump(), " is not supported (only \"sentence_embedding\")");
      }
    }
  }
  if (pooling_dir.empty()) fail(modules_path, ": no Pooling module (expected Transformer, Pooling, optional Normalize)");
  check_st_config((fs::path(dir) / "config_sentence_transformers.json").string());

  const std::string config_path = (fs::path(model_dir) / "config.json").string();
  if (!fs::exists(config_path)) fail(model_dir, ": no config.json (the Transformer module's model configuration)");
  const BertConfig config = BertConfig::load(config_path);
  info.max_seq_length = read_max_seq_length(model_dir, config);
  info.pooling = read_pooling((fs::path(pooling_dir) / "config.json").string(), config.hidden_size);
  info.dimension = config.hidden_size * static_cast<int64_t>(info.pooling.size());

  auto tokenizer = std::make_shared<const WordPieceTokenizer>(WordPieceTokenizer::load_dir(model_dir));
  info.tokenizer_file = tokenizer->name();
  if (tokenizer->vocab_size() > config.vocab_size)
    fail(info.tokenizer_file, ": the tokenizer has ", tokenizer->vocab_size(), " ids but ", config_path, " says vocab_size ",
         config.vocab_size);
  BertModel model(config, device);
  load_bert_weights(model, model_dir);
  model->eval();
  return SentenceEncoder(std::move(info), std::move(tokenizer), std::move(model));
}

std::vector<int32_t> SentenceEncoder::tokenize(const std::string& text) const {
  return tokenizer_->encode_for_model(text, info_.max_seq_length);
}

torch::Tensor pool_embeddings(const torch::Tensor& hidden, const torch::Tensor& attention_mask,
                              const std::vector<PoolingMode>& modes, bool normalize) {
  const torch::Tensor mask = attention_mask.to(hidden.device(), hidden.scalar_type()).unsqueeze(-1);  // [B, T, 1]
  std::vector<torch::Tensor> parts;
  torch::Tensor sum, count;
  for (PoolingMode m : modes) {
    switch (m) {
      case PoolingMode::kCls: parts.push_back(hidden.select(1, 0)); break;
      case PoolingMode::kMax:
        parts.push_back(hidden.masked_fill(mask.eq(0), -std::numeric_limits<float>::infinity()).amax(1));
        break;
      case PoolingMode::kMean:
      case PoolingMode::kMeanSqrtLen:
        if (!sum.defined()) {
          sum = (hidden * mask).sum(1);
          count = mask.sum(1).clamp_min(1e-9);
        }
        parts.push_back(m == PoolingMode::kMean ? sum / count : sum / count.sqrt());
        break;
    }
  }
  torch::Tensor out = parts.size() == 1 ? parts[0] : torch::cat(parts, -1);
  if (normalize) out = out / out.norm(2, -1, /*keepdim=*/true).clamp_min(1e-12);
  return out;
}

torch::Tensor SentenceEncoder::encode_ids(const std::vector<std::vector<int32_t>>& ids) {
  const int64_t B = static_cast<int64_t>(ids.size());
  if (B == 0) return torch::empty({0, info_.dimension}, torch::kFloat32);
  int64_t T = 0;
  for (const auto& s : ids) {
    if (s.empty()) fail("encode_ids: an empty sequence (expected at least [CLS] and [SEP])");
    T = std::max<int64_t>(T, static_cast<int64_t>(s.size()));
  }
  torch::Tensor input = torch::full({B, T}, static_cast<int64_t>(tokenizer_->pad_id()), torch::kInt64);
  torch::Tensor mask = torch::zeros({B, T}, torch::kInt64);
  auto in = input.accessor<int64_t, 2>();
  auto mk = mask.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b)
    for (std::size_t t = 0; t < ids[b].size(); ++t) {
      const int32_t id = ids[b][t];
      if (id < 0 || id >= model_->config().vocab_size)
        fail("encode_ids: token id ", id, " is outside the model's vocabulary [0, ", model_->config().vocab_size, ")");
      in[b][static_cast<int64_t>(t)] = id;
      mk[b][static_cast<int64_t>(t)] = 1;
    }
  torch::InferenceMode guard;
  const torch::Tensor hidden = model_->forward(input, mask);
  return pool_embeddings(hidden, mask.to(hidden.device()), info_.pooling, info_.normalize).to(torch::kCPU).contiguous();
}

torch::Tensor SentenceEncoder::encode(const std::vector<std::string>& texts, int64_t batch_size) {
  if (batch_size < 1) fail("encode: batch size must be >= 1, got ", batch_size);
  const int64_t N = static_cast<int64_t>(texts.size());
  std::vector<std::vector<int32_t>> ids(texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) ids[i] = tokenize(texts[i]);
  // Longest first, as sentence-transformers batches: little padding per batch.
  std::vector<int64_t> order(texts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return ids[a].size() > ids[b].size(); });
  torch::Tensor out = torch::empty({N, info_.dimension}, torch::kFloat32);
  for (int64_t start = 0; start < N; start += batch_size) {
    const int64_t n = std::min(batch_size, N - start);
    std::vector<std::vector<int32_t>> batch;
    for (int64_t k = 0; k < n; ++k) batch.push_back(std::move(ids[order[start + k]]));
    const torch::Tensor e = encode_ids(batch);
    for (int64_t k = 0; k < n; ++k) out[order[start + k]].copy_(e[k]);
  }
  return out;
}

}  // namespace conductor::llm
