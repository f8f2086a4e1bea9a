// TextHead: per-worker predicted quality from the query text, a block of the query features.
//
// What a conductor can tell about a query before calling anyone decides most of its routing. The
// 64 hashed word n-grams of the base featurizer cannot tell dozens of subjects apart (RouterBench
// AUC 0.66; on a many-subject benchmark the conductor sat below a TF-IDF logistic router). This head
// is that router's model inside the observation: per trace model, a logistic regression of the
// logged quality on TF-IDF-weighted word and character n-grams plus the task, and the features get
// its predicted probability of a good answer for every model.
//
//  - text vector: lower-cased words (runs of ASCII letters/digits and UTF-8 bytes); word n-grams of
//    order 1..word_ngram_max and character n-grams of length char_ngram_min..char_ngram_max inside
//    each word padded with one space on each side (sklearn's char_wb), each hashed with FNV-1a 64
//    into `buckets` columns; tf = 1 + ln(count), times idf = ln((1 + n) / (1 + df)) + 1 fitted on the
//    train split (buckets never seen in training are dropped); the vector is L2-normalized. The task
//    adds a one-hot column of value 1 (per-task calibration of every model).
//  - input (`features.text.input`): "tfidf" (the vector above, the default), "embedding" (the query's
//    sentence-encoder embedding, features.encoder: /queries/embedding of the traces or computed live
//    in serving; dense, unit L2 norm for normalized encoders) or "both" (the TF-IDF block, then the
//    embedding block); the task column follows either way. See docs/encoder.md.
//  - per model: L2-regularized logistic regression (cross-entropy on qualities in [0, 1], bias not
//    regularized) minimized by L-BFGS; the L2 strength is chosen per model from `l2_grid` by the
//    out-of-fold log loss of a K-fold split of the train queries (fold = FNV-1a of the query id).
//  - cross-fitting: the features of a TRAINING query carry the prediction of the fold model that did
//    not see it (fit() returns them), so the policy learns how much to trust the head from
//    predictions of the same quality as it gets on new queries; every other query (validation, test,
//    a live query in serving) gets the model fitted on the whole train split.
//
// Deterministic: fixed summation order, no threads, no random numbers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/config.h"
#include "core/json_util.h"

namespace conductor {

struct TraceSet;

// The word bytes both featurizers split on: ASCII letters and digits, and every byte of a
// multi-byte UTF-8 sequence; ASCII lower-casing.
inline bool is_word_byte(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}
inline unsigned char ascii_lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// What the head's logistic regression reads: the TF-IDF n-grams, the sentence embedding, or both.
enum class TextInput { kTfidf, kEmbedding, kBoth };
const char* text_input_name(TextInput i);  // "tfidf" | "embedding" | "both"

struct TextHeadConfig {
  bool enabled = false;
  TextInput input = TextInput::kTfidf;
  int buckets = 1 << 18;       // hash space of the n-grams
  int word_ngram_max = 2;      // 0..3 (0 = no word n-grams)
  int char_ngram_min = 3;      // 0 = no character n-grams
  int char_ngram_max = 5;
  std::vector<double> l2_grid = {2.0};  // one value: no selection (a grid costs folds x values fits)
  int folds = 5;               // >= 2
  int max_iter = 200;          // L-BFGS iterations per fit

  bool uses_tfidf() const { return input != TextInput::kEmbedding; }
  bool uses_embedding() const { return input != TextInput::kTfidf; }

  // The `features.text` mapping: {enabled, input, buckets, word_ngram_max, char_ngrams: [min, max], l2: [grid], folds, max_iter}.
  static TextHeadConfig parse(ConfigReader r);
  json to_json() const;
  static TextHeadConfig from_json(const json& j);
};

// A sparse row: (column, value) sorted by column.
using SparseRow = std::vector<std::pair<uint32_t, float>>;

class TextHead {
 public:
  // Out-of-fold predictions of the training queries, by query id ([n_models] probabilities each).
  using OutOfFold = std::unordered_map<std::string, std::vector<float>>;

  // Fits on the train split of `traces` (which needs /queries/text and outcomes, and with an
  // embedding input /queries/embedding). `tasks` is the
  // featurizer's sorted task vocabulary. `oof` (optional) receives the cross-fitted predictions of
  // every training query; `report` (optional) the chosen L2 strengths and out-of-fold log losses.
  static TextHead fit(const TextHeadConfig& config, const TraceSet& traces, const std::vector<std::string>& tasks,
                      OutOfFold* oof, json* report);

  int n_outputs() const { return static_cast<int>(models_.size()); }
  const std::vector<std::string>& models() const { return models_; }
  const TextHeadConfig& config() const { return config_; }
  // Embedding columns the head reads (0 for the TF-IDF input).
  int embedding_dim() const { return emb_dim_; }
  // Predicted probability of a good answer of every model (n_outputs() floats); `task` is the
  // featurizer's task index or -1; `embedding` the query's embedding_dim() floats (nullptr only
  // when the head reads no embedding).
  void predict(std::string_view text, int task, const float* embedding, float* out) const;

  // The fitted head: config, active buckets, idf and weights (float32 arrays in base64).
  json to_json() const;
  static TextHead from_json(const json& j, int n_tasks);

  // The row the regression reads: TF-IDF of `text` and/or the embedding, plus the task column
  // (exposed for tests).
  SparseRow vectorize(std::string_view text, int task, const float* embedding = nullptr) const;

 private:
  // The row of a text's (bucket, count) pairs: tf-idf over the active buckets, L2-normalized, then
  // the embedding (with an embedding input), then the task column.
  SparseRow row_of(const std::vector<std::pair<uint32_t, int>>& counts, int task, const float* embedding) const;

  TextHeadConfig config_;
  int n_tasks_ = 0;
  std::vector<uint32_t> buckets_;   // sorted active buckets (seen in training); column = position
  std::vector<float> idf_;          // per active bucket
  int emb_dim_ = 0;                 // embedding columns after the active buckets
  std::vector<std::string> models_;
  std::vector<float> weights_;      // [n_models x (active + embedding_dim + n_tasks)]
  std::vector<float> bias_;         // [n_models]
  std::vector<double> l2_;          // chosen L2 strength per model
};

}  // namespace conductor
