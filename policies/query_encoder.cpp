#include "policies/query_encoder.h"

#include <torch/torch.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>

#include "core/error.h"
#include "envs/conductor_live.h"
#include "llm/sentence_encoder.h"
#include "world/featurizer.h"
#include "traces/trace_set.h"

namespace conductor {

json embed_trace_queries(TraceSet& t, const std::string& model_dir, int64_t batch_size) {
  const std::string src = t.source.empty() ? std::string("the trace file") : t.source;
  if (!t.has_text())
    fail(src, " has no query texts (/queries/text): there is nothing to embed");
  llm::SentenceEncoder enc = llm::SentenceEncoder::load(model_dir);  // first: its errors say what is wrong
  const std::string sha = encoder_weights_sha256(model_dir);
  const auto t0 = std::chrono::steady_clock::now();
  const torch::Tensor e = enc.encode(t.query_text, batch_size);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int64_t dim = e.size(1);
  t.query_embedding.assign(static_cast<std::size_t>(e.numel()), 0.f);
  if (e.numel() > 0) std::memcpy(t.query_embedding.data(), e.data_ptr<float>(), t.query_embedding.size() * sizeof(float));
  t.embedding_dim = static_cast<int>(dim);
  t.embedding_model = encoder_name(model_dir);
  t.embedding_sha256 = sha;
  return json{{"model", std::filesystem::absolute(model_dir).lexically_normal().string()},
              {"name", t.embedding_model},
              {"sha256", sha},
              {"dim", dim},
              {"queries", t.n_queries()},
              {"seconds", secs}};
}

bool attach_query_encoder(ConductorLiveWorld& world) {
  const QueryFeaturizer& f = world.featurizer();
  if (!f.needs_embedding()) return false;
  const EncoderRef& ref = f.encoder();
  if (!std::filesystem::is_directory(ref.model))
    fail("the export's features read the sentence embedding of encoder '", ref.name, "' at ", ref.model,
         " (weights sha256 ", ref.sha256, "), and that directory is missing: put the same model there (e.g. "
         "scripts/fetch-encoder.sh ", ref.model, ")");
  const std::string sha = encoder_weights_sha256(ref.model);
  if (sha != ref.sha256)
    fail("the export's features read encoder '", ref.name, "' with weights sha256 ", ref.sha256, ", but ", ref.model,
         " holds weights with sha256 ", sha, ": a different model; restore the original, or retrain on traces "
         "embedded with this one (`conductor traces embed`)");
  auto enc = std::make_shared<llm::SentenceEncoder>(llm::SentenceEncoder::load(ref.model));
  if (enc->info().dimension != ref.dim)
    fail(ref.model, ": the encoder's embedding has ", enc->info().dimension, " dimensions, the export's features read ", ref.dim);
  // SentenceEncoder::encode is not documented thread-safe (docs/encoder.md): one request at a time,
  // each using LibTorch's intra-op threads.
  auto mu = std::make_shared<std::mutex>();
  world.set_embedder([enc, mu](const std::string& text) {
    std::lock_guard<std::mutex> lock(*mu);
    const torch::Tensor e = enc->encode({text}, 1);
    const float* p = e.data_ptr<float>();
    return std::vector<float>(p, p + e.size(1));
  });
  return true;
}

}  // namespace conductor
