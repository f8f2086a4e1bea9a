// features.encoder end to end with the random-weight BERT fixture (tests/llm/fixtures/bert_tiny):
// `traces embed` stores the encoder's embeddings with its sha256, a conductor world trains its text
// head on them, and the serving world of the export computes the same embedding live and the same
// features, refusing a missing or different encoder. all-MiniLM-L6-v2 when it was fetched.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <filesystem>

#include "artifacts/sha256.h"
#include "core/config.h"
#include "core/error.h"
#include "envs/conductor_env.h"
#include "envs/conductor_live.h"
#include "llm/sentence_encoder.h"
#include "policies/query_encoder.h"
#include "tests/test_util.h"
#include "tests/traces/trace_fixtures.h"
#include "tests/tokenizer/wordpiece_test_util.h"
#include "traces/catalog.h"
#include "traces/store.h"
#include "traces/synth.h"

namespace conductor {
namespace {

namespace fs = std::filesystem;

using testing::error_of;  // the message of the conductor::Error a call throws

TraceSet small_world(int queries) {
  SynthConfig sc;
  sc.queries = queries;
  sc.seed = 3;
  return synthesize(sc, default_catalog());
}

// Embeds a synthetic world with `encoder_dir` into DIR/traces.h5 and builds the conductor world of
// a config whose text head reads TF-IDF and the embedding.
struct EmbeddedWorld {
  std::string traces_path;
  ConductorEnvConfig config;
  std::shared_ptr<const ConductorWorld> world;
  json spec;
};

EmbeddedWorld embedded_world(const std::string& dir, const std::string& encoder_dir, int queries) {
  EmbeddedWorld w;
  TraceSet t = small_world(queries);
  const json r = embed_trace_queries(t, encoder_dir);
  EXPECT_EQ(r["queries"].get<std::size_t>(), static_cast<std::size_t>(queries));
  w.traces_path = dir + "/traces.h5";
  write_traces(t, w.traces_path);
  const std::string yaml = "traces: " + w.traces_path +
                           "\nsplit: test\nmode: sequential\nmax_steps: 2\n"
                           "features: {hash_dim: 8, text: {enabled: true, input: both, folds: 2, max_iter: 40}, "
                           "encoder: {enabled: true, model: " + encoder_dir + "}}\n";
  ConfigDoc doc = ConfigDoc::load_string(yaml, "enc-env.yaml");
  ConfigReader root = doc.root();
  w.config = ConductorEnvConfig::parse(root);
  w.world = ConductorWorld::build(w.config);
  w.spec = conductor_world_spec(*w.world, w.config).to_json();
  return w;
}

TEST(QueryEncoder, TracesEmbedStoresTheEncodersEmbeddingsAndSha256) {
  const std::string enc_dir = testing::tiny_encoder_dir();
  TraceSet t = small_world(40);
  const json r = embed_trace_queries(t, enc_dir, 7);
  EXPECT_EQ(r["sha256"], sha256_file(enc_dir + "/model.safetensors"));
  EXPECT_EQ(r["dim"], 32);
  ASSERT_EQ(t.embedding_dim, 32);
  EXPECT_EQ(t.embedding_model, "bert_tiny");
  EXPECT_EQ(t.embedding_sha256, r["sha256"].get<std::string>());
  llm::SentenceEncoder enc = llm::SentenceEncoder::load(enc_dir);
  const torch::Tensor want = enc.encode(t.query_text, 7);
  ASSERT_EQ(t.query_embedding.size(), static_cast<std::size_t>(want.numel()));
  EXPECT_EQ(std::memcmp(t.query_embedding.data(), want.data_ptr<float>(), t.query_embedding.size() * sizeof(float)), 0);
  const std::string path = testing::temp_dir() + "/t.h5";
  write_traces(t, path);
  const TraceSet back = read_traces(path);
  EXPECT_EQ(back.query_embedding, t.query_embedding);
  EXPECT_EQ(back.embedding_sha256, t.embedding_sha256);
  TraceSet no_text = small_world(5);
  no_text.query_text.clear();
  EXPECT_NE(error_of([&] { embed_trace_queries(no_text, enc_dir); }).find("no query texts"), std::string::npos);
}

TEST(QueryEncoder, ServingComputesTheTrainingFeaturesLiveAndRefusesAnotherEncoder) {
  const std::string dir = testing::temp_dir();
  const std::string enc_dir = dir + "/encoder";
  fs::copy(testing::tiny_encoder_dir(), enc_dir, fs::copy_options::recursive);
  const EmbeddedWorld w = embedded_world(dir, enc_dir, 60);
  const QueryFeaturizer& f = w.world->featurizer;
  ASSERT_TRUE(f.needs_embedding());
  EXPECT_EQ(w.spec["featurizer"]["encoder"]["sha256"], sha256_file(enc_dir + "/model.safetensors"));
  EXPECT_EQ(w.spec["featurizer"]["encoder"]["model"], fs::absolute(enc_dir).lexically_normal().string());

  // Without the encoder loaded, the serving world cannot featurize a query.
  auto live = ConductorLiveWorld::from_spec(w.spec, "enc-spec");
  const TraceSet& T = *w.world->traces;
  LiveQuery q;
  q.text = T.query_text[T.split_indices(Split::kTest)[0]];
  EXPECT_NE(error_of([&] { live->start(q); }).find("no encoder is loaded"), std::string::npos);
  ASSERT_TRUE(attach_query_encoder(*live));
  // Its live features of each test query are the environment's: the same bits outside the head,
  // the head within 1e-5 (the traces were embedded in padded batches, a request alone).
  const std::size_t D = static_cast<std::size_t>(f.dim());
  int compared = 0;
  for (std::size_t qi : T.split_indices(Split::kTest)) {
    const std::vector<float> e = live->embedder()(T.query_text[qi]);
    ASSERT_EQ(e.size(), 32u);
    const float* stored = T.embedding_of(qi);
    for (std::size_t k = 0; k < e.size(); ++k) ASSERT_NEAR(e[k], stored[k], 1e-5f) << "query " << qi;
    const std::vector<float> got = live->featurizer().featurize(T.query_text[qi], T.query_task[qi], T.input_tokens[qi], e);
    const float* env_row = w.world->features.data() + qi * D;
    for (std::size_t k = 0; k + f.text_head()->n_outputs() < D; ++k) ASSERT_EQ(got[k], env_row[k]);
    for (std::size_t k = D - f.text_head()->n_outputs(); k < D; ++k) ASSERT_NEAR(got[k], env_row[k], 1e-5f);
    ++compared;
  }
  EXPECT_GT(compared, 5);
  // A request that brings its own embedding of the wrong size is refused.
  LiveQuery bad = q;
  bad.embedding.assign(5, 0.f);
  EXPECT_NE(error_of([&] { live->start(bad); }).find("embedding has 5 values, the features read 32"), std::string::npos);

  // Another model at the referenced path: refused at load, naming both hashes.
  json other = w.spec;
  other["featurizer"]["encoder"]["sha256"] = std::string(64, 'b');
  auto live2 = ConductorLiveWorld::from_spec(other, "enc-spec");
  std::string msg = error_of([&] { attach_query_encoder(*live2); });
  EXPECT_NE(msg.find("with weights sha256 " + std::string(64, 'b')), std::string::npos) << msg;
  EXPECT_NE(msg.find(sha256_file(enc_dir + "/model.safetensors")), std::string::npos) << msg;
  // The directory gone.
  other = w.spec;
  other["featurizer"]["encoder"]["model"] = dir + "/moved";
  auto live3 = ConductorLiveWorld::from_spec(other, "enc-spec");
  msg = error_of([&] { attach_query_encoder(*live3); });
  EXPECT_NE(msg.find(dir + "/moved (weights sha256"), std::string::npos) << msg;
  EXPECT_NE(msg.find("directory is missing"), std::string::npos) << msg;
  // A world that reads no embedding loads nothing.
  TraceSet plain = small_world(30);
  const std::string plain_path = dir + "/plain.h5";
  write_traces(plain, plain_path);
  ConfigDoc doc = ConfigDoc::load_string("traces: " + plain_path + "\nsplit: test\nfeatures: {hash_dim: 8}\n", "p.yaml");
  ConfigReader proot = doc.root();
  const ConductorEnvConfig pc = ConductorEnvConfig::parse(proot);
  auto pw = ConductorWorld::build(pc);
  auto plain_live = ConductorLiveWorld::from_spec(conductor_world_spec(*pw, pc).to_json(), "plain");
  EXPECT_FALSE(attach_query_encoder(*plain_live));
  // An env config that asks for the encoder on traces without embeddings says how to add them.
  ConfigDoc doc2 = ConfigDoc::load_string("traces: " + plain_path + "\nsplit: test\nfeatures: {text: {enabled: true, input: "
                                          "embedding}, encoder: {enabled: true, model: " + enc_dir + "}}\n", "q.yaml");
  ConfigReader qroot = doc2.root();
  const ConductorEnvConfig qc = ConductorEnvConfig::parse(qroot);
  msg = error_of([&] { ConductorWorld::build(qc); });
  EXPECT_NE(msg.find("conductor traces embed --model"), std::string::npos) << msg;
}

TEST(QueryEncoder, MiniLMEmbeddingsOfTracesMatchTheEncoder) {
  CONDUCTOR_REQUIRE_MINILM(dir);
  TraceSet t = small_world(20);
  const json r = embed_trace_queries(t, dir);
  EXPECT_EQ(r["sha256"], "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db");
  EXPECT_EQ(t.embedding_dim, 384);
  llm::SentenceEncoder enc = llm::SentenceEncoder::load(dir);
  const torch::Tensor one = enc.encode({t.query_text[3]}, 1);
  for (int k = 0; k < 384; ++k) EXPECT_NEAR(t.embedding_of(3)[k], one[0][k].item<float>(), 1e-5f);
}

}  // namespace
}  // namespace conductor
