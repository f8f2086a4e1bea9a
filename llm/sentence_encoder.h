// A sentence-transformers model in LibTorch: WordPiece tokenizer -> BERT -> pooling -> optional L2
// normalization, loaded from the directory sentence-transformers saves (and publishes on the HF hub):
//
//   modules.json                  the pipeline: Transformer (path ""), Pooling, optional Normalize;
//                                 types as sentence-transformers 2.x (sentence_transformers.models.X)
//                                 or 6.x (sentence_transformers.....X) write them; any other module
//                                 (Dense, LayerNorm, a Router, ...) is refused by name
//   config.json + model.safetensors (or shards)   the BERT weights by tensor name (llm/bert.h)
//   tokenizer.json, or vocab.txt (+ tokenizer_config.json)   WordPiece (tokenizer/wordpiece.h)
//   sentence_bert_config.json     max_seq_length (else tokenizer_config.json's model_max_length),
//                                 capped at max_position_embeddings; do_lower_case must be false
//   <pooling path>/config.json    pooling_mode "mean" | "cls" | "max" | "mean_sqrt_len_tokens" or a
//                                 list of them (6.x), or the pooling_mode_*_tokens booleans (2.x);
//                                 several modes are concatenated in the order listed (2.x: cls, max,
//                                 mean, mean_sqrt_len); weighted-mean and last-token are refused
//
// encode() does what SentenceTransformer.encode does: [CLS] ids [SEP] truncated to max_seq_length,
// batches padded to their longest sequence, the pooled vectors (mean over the attention mask:
// sum / max(count, 1e-9)), normalized to unit L2 norm (x / max(|x|, 1e-12)) when Normalize is listed.
// Every malformed file is a conductor::Error naming the file, the key or tensor, and what was expected.
// See docs/encoder.md.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "llm/bert.h"
#include "tokenizer/wordpiece.h"

namespace conductor::llm {

enum class PoolingMode { kCls, kMax, kMean, kMeanSqrtLen };
const char* pooling_mode_name(PoolingMode m);  // sentence-transformers' names: "cls", "max", "mean", ...

struct SentenceEncoderInfo {
  std::string dir;
  int64_t max_seq_length = 0;
  std::vector<PoolingMode> pooling;  // concatenated in this order
  bool normalize = false;
  int64_t dimension = 0;  // hidden_size x the number of pooling modes
  std::string tokenizer_file;  // tokenizer.json or vocab.txt
};

class SentenceEncoder {
 public:
  // Reads and checks DIR (see above); the weights become f32 on `device`.
  static SentenceEncoder load(const std::string& dir, const torch::Device& device = torch::kCPU);

  // [CLS] + WordPiece ids + [SEP], at most max_seq_length ids.
  std::vector<int32_t> tokenize(const std::string& text) const;
  // Embeddings [texts.size(), dimension] f32 on the CPU, batch_size texts per forward (sorted by length
  // first, as sentence-transformers does, so that batches pad little; the output is in input order).
  torch::Tensor encode(const std::vector<std::string>& texts, int64_t batch_size = 32);
  // Pooled (and normalized) embeddings of already-tokenized sequences, one forward, padded to the longest.
  torch::Tensor encode_ids(const std::vector<std::vector<int32_t>>& ids);

  const SentenceEncoderInfo& info() const { return info_; }
  const BertConfig& config() const { return model_->config(); }
  const WordPieceTokenizer& tokenizer() const { return *tokenizer_; }
  BertModel& model() { return model_; }

 private:
  SentenceEncoder(SentenceEncoderInfo info, std::shared_ptr<const WordPieceTokenizer> tokenizer, BertModel model)
      : info_(std::move(info)), tokenizer_(std::move(tokenizer)), model_(std::move(model)) {}
  SentenceEncoderInfo info_;
  std::shared_ptr<const WordPieceTokenizer> tokenizer_;
  BertModel model_;
};

// Pooling of last hidden states [B, T, H] over attention_mask [B, T] (1 real, 0 padding): the modes
// concatenated -> [B, H * modes.size()], then L2-normalized when `normalize`.
torch::Tensor pool_embeddings(const torch::Tensor& hidden, const torch::Tensor& attention_mask,
                              const std::vector<PoolingMode>& modes, bool normalize);

}  // namespace conductor::llm
