// features.encoder (world/featurizer.h, world/text_head.h): the text head reading the query's
// sentence embedding alone or with the TF-IDF block, the checks that tie traces and exports to one
// encoder (the sha256 of its weights), and the config errors. The encoder itself is not run here
// (world has no torch): embeddings are made up, and the random-weight BERT fixture directory is
// only hashed. tests/policies/query_encoder_test.cpp runs the encoder end to end.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "artifacts/sha256.h"
#include "core/atomic_file.h"
#include "core/config.h"
#include "core/error.h"
#include "core/random.h"
#include "world/featurizer.h"
#include "world/predictors.h"
#include "tests/test_util.h"
#include "tests/traces/trace_fixtures.h"
#include "traces/trace_set.h"

namespace conductor {
namespace {

namespace fs = std::filesystem;

std::string tiny_dir() { return std::string(CONDUCTOR_SOURCE_DIR) + "/tests/llm/fixtures/bert_tiny"; }

using testing::error_of;  // the message of the conductor::Error a call throws

// Model m0 is good on even subjects (named in the text, invisible to the embedding); model m1 is
// good when a latent direction of the query is positive (in the embedding, invisible to the text).
TraceSet latent_world(int n, uint64_t seed) {
  Rng rng(seed);
  TraceSet t;
  t.source = "encoder-features-test";
  t.model_name = {"m0", "m1"};
  t.model_provider = {"p", "p"};
  t.price_in_per_mtok = {1.0, 1.0};
  t.price_out_per_mtok = {1.0, 1.0};
  t.embedding_dim = 6;
  t.embedding_model = "bert_tiny";
  t.embedding_sha256 = encoder_weights_sha256(tiny_dir());
  std::vector<int> subject;
  std::vector<float> latent;
  for (int i = 0; i < n; ++i) {
    const int s = static_cast<int>(rng.below(20));
    std::string text;
    for (int w = 0; w < 6; ++w)
      text += (w % 3 == 0 ? "subj" + std::to_string(s) : "filler" + std::to_string(rng.below(30))) + " ";
    double e[6], sq = 0;
    for (double& v : e) sq += (v = rng.normal()) * v;
    for (double v : e) t.query_embedding.push_back(static_cast<float>(v / std::sqrt(sq)));
    t.query_id.push_back("q" + std::to_string(i));
    t.query_task.push_back("task");
    t.query_text.push_back(text);
    t.input_tokens.push_back(10);
    t.split.push_back(static_cast<uint8_t>(i < n * 2 / 3 ? Split::kTrain : Split::kTest));
    subject.push_back(s);
    latent.push_back(static_cast<float>(e[0]));
  }
  t.allocate_outcomes();
  for (int i = 0; i < n; ++i) {
    const std::size_t q = static_cast<std::size_t>(i);
    t.quality[t.at(q, 0)] = rng.bernoulli(subject[q] % 2 == 0 ? 0.9 : 0.1) ? 1.f : 0.f;
    t.quality[t.at(q, 1)] = rng.bernoulli(latent[q] > 0 ? 0.9 : 0.1) ? 1.f : 0.f;
  }
  return t;
}

FeaturizerConfig config_for(TextInput input) {
  FeaturizerConfig fc;
  fc.hash_dim = 4;
  fc.text.enabled = true;
  fc.text.input = input;
  fc.text.folds = 3;
  fc.text.l2_grid = {0.1, 1.0};
  if (input != TextInput::kTfidf) {
    fc.encoder.enabled = true;
    fc.encoder.model = tiny_dir();
  }
  return fc;
}

// Held-out AUC of the head's column of each model.
std::vector<double> head_auc(const QueryFeaturizer& f, const TraceSet& t) {
  const std::vector<float> x = f.featurize_all(t);
  const std::size_t D = static_cast<std::size_t>(f.dim());
  std::vector<double> out;
  for (std::size_t m = 0; m < 2; ++m) {
    std::vector<double> score;
    std::vector<uint8_t> label;
    for (std::size_t q : t.split_indices(Split::kTest)) {
      score.push_back(x[q * D + D - 2 + m]);
      label.push_back(t.quality[t.at(q, m)] > 0.5f);
    }
    out.push_back(roc_auc(score, label));
  }
  return out;
}

TEST(EncoderFeatures, EachInputReadsWhatItCarries) {
  const TraceSet t = latent_world(900, 5);
  const auto tfidf = head_auc(QueryFeaturizer::for_traces(config_for(TextInput::kTfidf), t), t);
  const auto emb = head_auc(QueryFeaturizer::for_traces(config_for(TextInput::kEmbedding), t), t);
  const auto both = head_auc(QueryFeaturizer::for_traces(config_for(TextInput::kBoth), t), t);
  std::printf("held-out AUC m0 (text signal) / m1 (embedding signal): tfidf %.3f / %.3f, embedding %.3f / %.3f, "
              "both %.3f / %.3f\n", tfidf[0], tfidf[1], emb[0], emb[1], both[0], both[1]);
  // The Bayes AUC of each model is 0.9 (labels flip with probability 0.1).
  EXPECT_GT(tfidf[0], 0.82);
  EXPECT_LT(tfidf[1], 0.65);
  EXPECT_LT(emb[0], 0.65);
  EXPECT_GT(emb[1], 0.82);
  EXPECT_GT(both[0], 0.82);
  EXPECT_GT(both[1], 0.82);
  for (double a : {tfidf[0], emb[1], both[0], both[1]}) EXPECT_LT(a, 0.95);  // above Bayes would be a leak
}

TEST(EncoderFeatures, ExportRoundTripNamesTheEncoderAndReproducesTheFeatures) {
  const TraceSet t = latent_world(300, 7);
  const QueryFeaturizer f = QueryFeaturizer::for_traces(config_for(TextInput::kBoth), t);
  ASSERT_TRUE(f.needs_embedding());
  EXPECT_EQ(f.text_head()->embedding_dim(), 6);
  EXPECT_EQ(f.encoder().sha256, sha256_file(tiny_dir() + "/model.safetensors"));
  EXPECT_EQ(f.encoder().name, "bert_tiny");
  EXPECT_EQ(f.encoder().model, fs::absolute(tiny_dir()).lexically_normal().string());
  EXPECT_EQ(f.encoder().dim, 6);
  const json j = f.to_json();
  EXPECT_EQ(j["encoder"]["sha256"], f.encoder().sha256);
  EXPECT_EQ(j["text"]["config"]["input"], "both");
  EXPECT_EQ(f.summary_json()["encoder"], j["encoder"]);
  const QueryFeaturizer g = QueryFeaturizer::from_json(j);
  ASSERT_TRUE(g.needs_embedding());
  EXPECT_EQ(g.to_json().dump(), j.dump());
  const std::size_t D = static_cast<std::size_t>(f.dim());
  const std::vector<float> x = f.featurize_all(t), y = g.featurize_all(t);
  int train_differs = 0;
  for (std::size_t q = 0; q < t.n_queries(); ++q) {
    const std::vector<float> live =
        g.featurize(t.query_text[q], t.query_task[q], t.input_tokens[q], std::vector<float>(t.embedding_of(q), t.embedding_of(q) + 6));
    EXPECT_EQ(std::vector<float>(y.begin() + static_cast<std::ptrdiff_t>(q * D), y.begin() + static_cast<std::ptrdiff_t>((q + 1) * D)), live);
    if (t.split[q] != static_cast<uint8_t>(Split::kTrain))
      EXPECT_EQ(std::vector<float>(x.begin() + static_cast<std::ptrdiff_t>(q * D), x.begin() + static_cast<std::ptrdiff_t>((q + 1) * D)), live);
    else
      train_differs += x[q * D + D - 1] != live[D - 1];  // cross-fitted
  }
  EXPECT_EQ(train_differs, static_cast<int>(t.split_indices(Split::kTrain).size()));
  // The embedding changes the head's output; without one, featurize refuses.
  std::vector<float> other(t.embedding_of(0), t.embedding_of(0) + 6);
  other[0] = -other[0];
  EXPECT_NE(g.featurize(t.query_text[0], "task", 10, other),
            g.featurize(t.query_text[0], "task", 10, std::vector<float>(t.embedding_of(0), t.embedding_of(0) + 6)));
  EXPECT_NE(error_of([&] { (void)g.featurize("text", "task", 10, std::vector<float>(5, 0.f)); }).find("an embedding of 5 values"),
            std::string::npos);
  EXPECT_NE(error_of([&] { (void)g.featurize("text", "task", 10); }).find("sentence embedding"), std::string::npos);
  // TF-IDF-only exports stay as they were: no input key, no encoder.
  const json plain = QueryFeaturizer::for_traces(config_for(TextInput::kTfidf), t).to_json();
  EXPECT_FALSE(plain["text"]["config"].contains("input"));
  EXPECT_FALSE(plain.contains("encoder"));
  EXPECT_FALSE(plain["text"].contains("embedding_dim"));
}

TEST(EncoderFeatures, TracesWithoutOrWithOtherEmbeddingsAreClearErrors) {
  const TraceSet t = latent_world(120, 9);
  TraceSet none = t;
  none.query_embedding.clear();
  none.embedding_dim = 0;
  std::string msg = error_of([&] { QueryFeaturizer::for_traces(config_for(TextInput::kEmbedding), none); });
  EXPECT_NE(msg.find("has no query embeddings (/queries/embedding)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("conductor traces embed --model " + fs::absolute(tiny_dir()).lexically_normal().string()),
            std::string::npos) << msg;
  TraceSet other = t;
  other.embedding_sha256 = std::string(64, '0');
  other.embedding_model = "another-model";
  msg = error_of([&] { QueryFeaturizer::for_traces(config_for(TextInput::kEmbedding), other); });
  EXPECT_NE(msg.find("made by encoder 'another-model' (weights sha256 " + std::string(64, '0') + ")"), std::string::npos) << msg;
  EXPECT_NE(msg.find(encoder_weights_sha256(tiny_dir())), std::string::npos) << msg;
  // An export evaluated on traces of another encoder, or of none.
  const QueryFeaturizer g = QueryFeaturizer::from_json(QueryFeaturizer::for_traces(config_for(TextInput::kEmbedding), t).to_json());
  EXPECT_NE(error_of([&] { (void)g.featurize_all(other); }).find("made by encoder 'another-model'"), std::string::npos);
  EXPECT_NE(error_of([&] { (void)g.featurize_all(none); }).find("has no query embeddings"), std::string::npos);
  TraceSet wide = t;
  wide.embedding_dim = 3;
  EXPECT_NE(error_of([&] { (void)g.featurize_all(wide); }).find("have 3 dimensions, the encoder 6"), std::string::npos);
}

TEST(EncoderFeatures, ConfigErrorsNameTheKey) {
  const std::string tiny = tiny_dir();
  auto parse = [](const std::string& yaml) {
    ConfigDoc doc = ConfigDoc::load_string(yaml, "f.yaml");
    return FeaturizerConfig::parse(doc.root());
  };
  const FeaturizerConfig ok = parse("text: {enabled: true, input: both}\nencoder: {enabled: true, model: " + tiny + "}");
  EXPECT_TRUE(ok.encoder.enabled);
  EXPECT_EQ(ok.encoder.model, tiny);
  EXPECT_EQ(ok.text.input, TextInput::kBoth);
  EXPECT_EQ(parse("text: {enabled: true, input: embedding, word_ngram_max: 0, char_ngrams: [0, 0]}\nencoder: {enabled: true, model: " + tiny + "}").text.input,
            TextInput::kEmbedding);  // no n-grams needed without the TF-IDF block
  EXPECT_FALSE(parse("").encoder.enabled);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"encoder: {enabled: true}\ntext: {enabled: true, input: embedding}", "key 'encoder.model': the encoder needs model: DIR"},
      {"encoder: {enabled: true, model: /nonexistent/dir}\ntext: {enabled: true, input: embedding}",
       "key 'encoder.model': '/nonexistent/dir' is not a directory"},
      {"encoder: {enabled: true, model: " + tiny + "/1_Pooling}\ntext: {enabled: true, input: embedding}",
       "has no modules.json"},
      {"encoder: {enabled: true, model: " + tiny + "}", "key 'encoder': the sentence embedding is read by the text head"},
      {"encoder: {enabled: true, model: " + tiny + "}\ntext: {enabled: true}", "key 'encoder': the sentence embedding"},
      {"text: {enabled: true, input: both}", "key 'text.input': 'both' reads the query's sentence embedding"},
      {"text: {enabled: true, input: bert}", "text.input"},
      {"encoder: {enabled: yes please}", "encoder.enabled"},
      {"encoder: {model: x, dim: 3}", "encoder.dim"},
  };
  for (const auto& [yaml, want] : bad) {
    const std::string msg = error_of([&] { parse(yaml); });
    EXPECT_NE(msg.find("f.yaml"), std::string::npos) << yaml << ": " << msg;
    EXPECT_NE(msg.find(want), std::string::npos) << yaml << ": " << msg;
  }
}

TEST(EncoderFeatures, WeightsSha256OfSingleAndShardedCheckpoints) {
  EXPECT_EQ(encoder_weights_sha256(tiny_dir()), sha256_file(tiny_dir() + "/model.safetensors"));
  EXPECT_EQ(encoder_name(tiny_dir() + "/"), "bert_tiny");
  const std::string dir = testing::temp_dir();
  write_file_atomic(dir + "/modules.json", R"([{"idx": 0, "name": "0", "path": "bert", "type": "sentence_transformers.models.Transformer"}])");
  fs::create_directories(dir + "/bert");
  EXPECT_NE(error_of([&] { encoder_weights_sha256(dir); }).find("no model.safetensors or model.safetensors.index.json"),
            std::string::npos);
  write_file_atomic(dir + "/bert/model.safetensors.index.json",
                    R"({"weight_map": {"a": "model-00002-of-00002.safetensors", "b": "model-00001-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"}})");
  write_file_atomic(dir + "/bert/model-00001-of-00002.safetensors", "first shard");
  write_file_atomic(dir + "/bert/model-00002-of-00002.safetensors", "second shard");
  const std::string want = sha256_hex(sha256_hex("first shard") + "  model-00001-of-00002.safetensors\n" +
                                      sha256_hex("second shard") + "  model-00002-of-00002.safetensors\n");
  EXPECT_EQ(encoder_weights_sha256(dir), want);
  // Other weights, another identity (the per-process cache is keyed by size and modification time).
  write_file_atomic(dir + "/bert/model-00002-of-00002.safetensors", "second shard, retrained");
  EXPECT_NE(encoder_weights_sha256(dir), want);
  fs::remove(dir + "/bert/model-00001-of-00002.safetensors");
  EXPECT_NE(error_of([&] { encoder_weights_sha256(dir); }).find("model-00001-of-00002.safetensors"), std::string::npos);
}

}  // namespace
}  // namespace conductor
