// A BERT encoder (transformers' BertModel without the pooler) in LibTorch, in the order the math runs:
//
//   h = LayerNorm(word_embeddings[ids] + position_embeddings[0..T-1] + token_type_embeddings[0])
//   for each layer (post-LN):
//     a = LayerNorm(h + dense(softmax(q k^T / sqrt(d) + mask) v))     q, k, v = query(h), key(h), value(h)
//     h = LayerNorm(a + dense(gelu(dense(a))))                        GELU exact (erf)
//   hidden = h   [B, T, hidden]
//
// bert_named_weights() gives every parameter its HF checkpoint name (embeddings.word_embeddings.weight,
// encoder.layer.N.attention.self.query.weight, ..., encoder.layer.N.output.LayerNorm.bias), so
// loading is a name table. Padding keys get the lowest float added to their scores (transformers'
// eager attention), so a padded row computes what the unpadded sequence computes. Attention is plain
// matmul + softmax (no fused kernel: the same code on LibTorch 1.13 and 2.x). Inference only: the
// module holds no dropout. f32 on any device (the weights are converted from BF16/F16/F32 files).
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "core/json_util.h"
#include "llm/hf_checkpoint.h"
#include "llm/lora.h"

namespace conductor::llm {

struct BertConfig {
  int64_t vocab_size = 0;           // required
  int64_t hidden_size = 0;          // required
  int64_t num_hidden_layers = 0;    // required
  int64_t num_attention_heads = 0;  // required
  int64_t intermediate_size = 0;    // required
  int64_t max_position_embeddings = 512;  // defaults as in transformers' BertConfig
  int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  std::vector<std::string> ignored_keys;  // config.json keys read and ignored (they change no math)

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  int64_t num_parameters() const;  // without the pooler

  void validate(const std::string& source) const;
  // From a parsed config.json. Another architecture is refused by name (model_type "qwen2": ...), and
  // so is every key that would change the math away from what is implemented (hidden_act other than
  // "gelu", position_embedding_type other than "absolute", is_decoder, cross-attention, quantization).
  static BertConfig from_json(const json& j, const std::string& source);
  static BertConfig load(const std::string& config_json_path);
};

class BertEmbeddingsImpl : public torch::nn::Module {
 public:
  BertEmbeddingsImpl(const BertConfig& c, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& input_ids);  // token type 0 everywhere
  torch::Tensor word_embeddings, position_embeddings, token_type_embeddings;  // the ".weight"s
  torch::nn::LayerNorm LayerNorm{nullptr};
};
TORCH_MODULE(BertEmbeddings);

class BertLayerImpl : public torch::nn::Module {
 public:
  BertLayerImpl(const BertConfig& c, const torch::TensorOptions& options);
  // h [B, T, hidden]; key_bias [B, 1, 1, T] (0 for real keys, the lowest float for padding) or undefined.
  torch::Tensor forward(const torch::Tensor& h, const torch::Tensor& key_bias);
  Linear query{nullptr}, key{nullptr}, value{nullptr}, attention_dense{nullptr}, intermediate{nullptr}, output{nullptr};
  torch::nn::LayerNorm attention_norm{nullptr}, output_norm{nullptr};

 private:
  int64_t heads_, head_dim_;
};
TORCH_MODULE(BertLayer);

class BertModelImpl : public torch::nn::Module {
 public:
  // Uninitialized parameters (torch::empty), f32 on `device`: load_bert_weights fills them.
  BertModelImpl(const BertConfig& config, const torch::Device& device = torch::kCPU);
  // input_ids [B, T] int64, attention_mask [B, T] (1 real, 0 padding; any integer or bool dtype) ->
  // last hidden states [B, T, hidden] f32. T must not exceed max_position_embeddings.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask);

  const BertConfig& config() const { return config_; }
  torch::Device device() const { return device_; }
  BertEmbeddings embeddings{nullptr};
  std::vector<BertLayer> layers;

 private:
  BertConfig config_;
  torch::Device device_;
};
TORCH_MODULE(BertModel);

// The HF tensor name of every parameter (no prefix), in model order.
std::vector<std::pair<std::string, torch::Tensor>> bert_named_weights(BertModel& model);

// Loads DIR's model.safetensors (or sharded index) into the model. Tensor names may carry a "bert."
// prefix (BertFor* checkpoints); pooler.*, embeddings.position_ids and, with a prefix, the heads of
// BertFor* (cls.*) are not read; any other tensor not in the model, a missing tensor, a wrong shape
// or an unsupported dtype is a conductor::Error naming the file and the tensor.
void load_bert_weights(BertModel& model, const std::string& dir);

}  // namespace conductor::llm
