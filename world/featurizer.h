// Query featurizer: a deterministic vector for a query from its text, task and length.
//
// Layout of the output (dim() floats):
//   [0, hash_dim)                  hashed word n-grams (n = 1..ngram_max) of the lower-cased text,
//                                  signed feature hashing with FNV-1a 64 (never std::hash, whose
//                                  values differ between standard libraries), counts log1p-damped,
//                                  then the block is L2-normalized (all zeros when there is no text)
//   [hash_dim, hash_dim + T)       task one-hot over the featurizer's task vocabulary (sorted names;
//                                  an unknown task gives all zeros)
//   [hash_dim + T]                 length: log1p(input_tokens) / 10 (0 when input_tokens < 0)
//   [hash_dim + T + 1, + M)        with `text.enabled`: the text head's predicted probability of a
//                                  good answer of each of the M trace models (world/text_head.h;
//                                  cross-fitted on training queries of the traces it was fitted on);
//                                  with `encoder.enabled` the head reads the query's sentence
//                                  embedding (text.input: embedding | both; docs/encoder.md)
//
// The same text, task and length give the same floats on every machine: only integer hashing,
// IEEE +,*,/,sqrt and log1p of small integers are used, in a fixed order.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/hash.h"
#include "core/json_util.h"
#include "world/text_head.h"

namespace conductor {

struct TraceSet;

// `features.encoder: {enabled, model: DIR}`: a sentence-transformers directory whose embedding of
// each query the text head reads. The trace file carries the embeddings (/queries/embedding, from
// `conductor traces embed --model DIR`), made by the weights of this sha256; serving computes them
// live (policies/query_encoder.h).
struct EncoderFeatureConfig {
  bool enabled = false;
  std::string model;  // the directory, as given

  static EncoderFeatureConfig parse(ConfigReader r);
};

// What an export records of the encoder its features read: the directory (absolute), its name, the
// sha256 of its weights (encoder_weights_sha256) and the embedding dimension.
struct EncoderRef {
  std::string model;
  std::string name;
  std::string sha256;
  int dim = 0;
  json to_json() const;
  static EncoderRef from_json(const json& j);
};

// The identity of a sentence-transformers directory's weights: the sha256 of model.safetensors (what
// `sha256sum model.safetensors` prints), or for a sharded checkpoint the sha256 of the lines
// "<sha256>  <shard>\n" of its shards sorted by name. The Transformer module's folder is read from
// modules.json. Cached per process by path, size and modification time. Throws naming the file.
std::string encoder_weights_sha256(const std::string& dir);
// The name recorded with embeddings: the directory's last component.
std::string encoder_name(const std::string& dir);

struct FeaturizerConfig {
  int hash_dim = 64;   // buckets of the hashed n-gram block; >= 1
  int ngram_max = 2;   // word n-grams of order 1..ngram_max; 1..3
  TextHeadConfig text; // `text: {...}`: the per-model quality head on TF-IDF n-grams (off by default)
  EncoderFeatureConfig encoder;  // `encoder: {...}`: the sentence embedding the head reads (off by default)

  static FeaturizerConfig parse(ConfigReader r);
};

class QueryFeaturizer {
 public:
  QueryFeaturizer() = default;
  // `tasks` is the task vocabulary; it is sorted and de-duplicated here.
  QueryFeaturizer(const FeaturizerConfig& config, std::vector<std::string> tasks);
  // Vocabulary = the distinct tasks of `traces`.
  // With `text.enabled`, the text head is fitted on the train split of `traces` here (report: its
  // chosen L2 strengths and out-of-fold log losses, when given). With `encoder.enabled`, `traces`
  // must carry /queries/embedding made by the weights in encoder.model (same sha256), else an error
  // says how to add them.
  static QueryFeaturizer for_traces(const FeaturizerConfig& config, const TraceSet& traces, json* report = nullptr);

  int dim() const {
    return config_.hash_dim + static_cast<int>(tasks_.size()) + 1 + (head_ ? head_->n_outputs() : 0);
  }
  const FeaturizerConfig& config() const { return config_; }
  const TextHead* text_head() const { return head_.get(); }
  int hash_dim() const { return config_.hash_dim; }
  const std::vector<std::string>& tasks() const { return tasks_; }
  // Index of `task` in the vocabulary, or -1.
  int task_index(std::string_view task) const;

  // Whether the features read the query's sentence embedding (then featurize needs it), and of which
  // encoder.
  bool needs_embedding() const { return head_ && head_->embedding_dim() > 0; }
  const EncoderRef& encoder() const { return encoder_; }

  // Writes dim() floats to `out`. `embedding`: the query's encoder().dim floats when
  // needs_embedding(), else ignored.
  void featurize(std::string_view text, std::string_view task, int input_tokens, float* out,
                 const float* embedding = nullptr) const;
  // (`embedding`: empty, or encoder().dim floats.)
  std::vector<float> featurize(std::string_view text, std::string_view task, int input_tokens,
                               const std::vector<float>& embedding = {}) const;

  // Row-major [n_queries x dim()] features of every query of `traces` (computed once per trace set).
  // Training queries whose out-of-fold text-head prediction this featurizer holds (it was fitted on
  // these traces) get that prediction instead of the full head's. When needs_embedding(), `traces`
  // must carry embeddings of the same encoder (sha256 and dimension), else a conductor::Error.
  std::vector<float> featurize_all(const TraceSet& traces) const;

  // Everything needed to rebuild this featurizer (written into exports): with a text head, its
  // weights too (a few MB). summary_json() is the same without the weights (reports).
  json to_json() const;
  json summary_json() const;
  static QueryFeaturizer from_json(const json& j);

 private:
  FeaturizerConfig config_;
  std::vector<std::string> tasks_;
  std::shared_ptr<const TextHead> head_;
  std::shared_ptr<const TextHead::OutOfFold> oof_;
  EncoderRef encoder_;  // set when needs_embedding()
};

// Checks that `traces` carry embeddings of `ref`'s encoder; `what` names the reader in messages.
void check_trace_embeddings(const EncoderRef& ref, const TraceSet& traces, const std::string& what);

}  // namespace conductor
