#include "world/featurizer.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>
#include <tuple>

#include "artifacts/sha256.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "traces/trace_set.h"

namespace conductor {

namespace fs = std::filesystem;

EncoderFeatureConfig EncoderFeatureConfig::parse(ConfigReader r) {
  EncoderFeatureConfig c;
  c.enabled = r.get<bool>("enabled", c.enabled);
  c.model = r.get<std::string>("model", c.model);
  if (c.enabled) {
    if (c.model.empty())
      r.fail_at("model", "the encoder needs model: DIR, a sentence-transformers directory (e.g. the one "
                         "scripts/fetch-encoder.sh fetches)");
    if (!fs::is_directory(c.model))
      r.fail_at("model", "'" + c.model + "' is not a directory (expected a sentence-transformers directory)");
    if (!fs::exists(fs::path(c.model) / "modules.json"))
      r.fail_at("model", "'" + c.model + "' has no modules.json: not a sentence-transformers directory");
  }
  r.finish();
  return c;
}

json EncoderRef::to_json() const { return json{{"model", model}, {"name", name}, {"sha256", sha256}, {"dim", dim}}; }

EncoderRef EncoderRef::from_json(const json& j) {
  EncoderRef e;
  e.model = j.at("model").get<std::string>();
  e.name = j.at("name").get<std::string>();
  e.sha256 = j.at("sha256").get<std::string>();
  e.dim = j.at("dim").get<int>();
  if (e.dim < 1 || e.sha256.size() != 64) fail("featurizer spec: encoder ", j.dump(), ": expected dim >= 1 and a sha256");
  return e;
}

std::string encoder_name(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();
  return p.filename().string();
}

std::string encoder_weights_sha256(const std::string& dir) {
  // The Transformer module's folder (modules.json's first entry; "" = the directory itself).
  fs::path model_dir = dir;
  const std::string modules = (fs::path(dir) / "modules.json").string();
  if (fs::exists(modules)) {
    const json m = parse_json(read_file(modules), modules);
    if (m.is_array() && !m.empty() && m[0].is_object() && m[0].contains("path") && m[0]["path"].is_string())
      model_dir /= m[0]["path"].get<std::string>();
  }
  std::vector<std::string> files;
  const fs::path single = model_dir / "model.safetensors";
  const fs::path index = model_dir / "model.safetensors.index.json";
  if (fs::exists(single)) {
    files.push_back(single.string());
  } else if (fs::exists(index)) {
    const json j = parse_json(read_file(index.string()), index.string());
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      fail(index.string(), ": expected {\"weight_map\": {tensor: shard file}}");
    std::vector<std::string> shards;
    for (const auto& [name, shard] : j["weight_map"].items()) {
      if (!shard.is_string()) fail(index.string(), ": weight_map['", name, "'] is not a file name");
      shards.push_back(shard.get<std::string>());
    }
    std::sort(shards.begin(), shards.end());
    shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
    for (const auto& f : shards) files.push_back((model_dir / f).string());
  } else {
    fail(dir, ": no model.safetensors or model.safetensors.index.json in ", model_dir.string(),
         " (the encoder's weights)");
  }
  static std::mutex mu;
  static std::map<std::tuple<std::string, uintmax_t, int64_t>, std::string> cache;
  auto file_sha = [&](const std::string& f) {
    std::error_code ec;
    const std::string abs = fs::absolute(f, ec).string();
    const uintmax_t size = fs::file_size(f, ec);
    if (ec) fail(f, ": cannot read the encoder's weights (", ec.message(), ")");
    const int64_t mtime = static_cast<int64_t>(fs::last_write_time(f, ec).time_since_epoch().count());
    const auto key = std::make_tuple(abs, size, mtime);
    {
      std::lock_guard<std::mutex> lock(mu);
      if (auto it = cache.find(key); it != cache.end()) return it->second;
    }
    const std::string h = sha256_file(f);
    std::lock_guard<std::mutex> lock(mu);
    cache[key] = h;
    return h;
  };
  if (files.size() == 1 && files[0] == single.string()) return file_sha(files[0]);
  std::string lines;
  for (const auto& f : files) lines += file_sha(f) + "  " + fs::path(f).filename().string() + "\n";
  return sha256_hex(lines);
}

void check_trace_embeddings(const EncoderRef& ref, const TraceSet& t, const std::string& what) {
  const std::string src = t.source.empty() ? std::string("the trace file") : t.source;
  if (!t.has_embedding())
    fail(what, ": ", src, " has no query embeddings (/queries/embedding); add them with `conductor traces embed "
         "--model ", ref.model, " IN OUT` and train or evaluate on OUT");
  if (t.embedding_sha256 != ref.sha256)
    fail(what, ": ", src, "'s query embeddings were made by encoder '", t.embedding_model, "' (weights sha256 ",
         t.embedding_sha256, "), not by ", ref.model, " (sha256 ", ref.sha256, "); re-embed with `conductor traces "
         "embed --model ", ref.model, " IN OUT`");
  if (t.embedding_dim != ref.dim)
    fail(what, ": ", src, "'s query embeddings have ", t.embedding_dim, " dimensions, the encoder ", ref.dim);
}

FeaturizerConfig FeaturizerConfig::parse(ConfigReader r) {
  FeaturizerConfig c;
  c.hash_dim = r.get_in<int>("hash_dim", c.hash_dim, 1, 1 << 20);
  c.ngram_max = r.get_in<int>("ngram_max", c.ngram_max, 1, 3);
  c.text = TextHeadConfig::parse(r.child("text"));
  c.encoder = EncoderFeatureConfig::parse(r.child("encoder"));
  if (c.encoder.enabled && !(c.text.enabled && c.text.uses_embedding()))
    r.fail_at("encoder", "the sentence embedding is read by the text head: set text: {enabled: true, input: "
                         "embedding} (or input: both), or disable the encoder");
  if (c.text.enabled && c.text.uses_embedding() && !c.encoder.enabled)
    r.child("text").fail_at("input", std::string("'") + text_input_name(c.text.input) +
                                         "' reads the query's sentence embedding: set encoder: {enabled: true, model: DIR}");
  r.finish();
  return c;
}

QueryFeaturizer::QueryFeaturizer(const FeaturizerConfig& config, std::vector<std::string> tasks)
    : config_(config), tasks_(std::move(tasks)) {
  if (config_.hash_dim < 1) fail("featurizer: hash_dim must be >= 1, got ", config_.hash_dim);
  if (config_.ngram_max < 1 || config_.ngram_max > 3)
    fail("featurizer: ngram_max must be in 1..3, got ", config_.ngram_max);
  std::sort(tasks_.begin(), tasks_.end());
  tasks_.erase(std::unique(tasks_.begin(), tasks_.end()), tasks_.end());
}

namespace {
// Fingerprint of everything a text head is fitted from: the config, and the traces' query ids,
// tasks, texts, splits, models and qualities.
uint64_t text_head_key(const FeaturizerConfig& config, const TraceSet& t) {
  uint64_t h = fnv1a64(config.text.to_json().dump());
  auto mix = [&h](std::string_view s) {
    h = fnv1a64(s, h);
    h = fnv1a64(std::string_view("\x1f", 1), h);
  };
  for (const auto& m : t.model_name) mix(m);
  for (std::size_t q = 0; q < t.n_queries(); ++q) {
    mix(t.query_id[q]);
    mix(t.query_task[q]);
    if (t.has_text()) mix(t.query_text[q]);
  }
  h = fnv1a64(std::string_view(reinterpret_cast<const char*>(t.split.data()), t.split.size()), h);
  h = fnv1a64(std::string_view(reinterpret_cast<const char*>(t.quality.data()), t.quality.size() * sizeof(float)), h);
  if (config.text.uses_embedding()) {
    mix(t.embedding_sha256);
    h = fnv1a64(std::string_view(reinterpret_cast<const char*>(t.query_embedding.data()),
                                 t.query_embedding.size() * sizeof(float)), h);
  }
  return h;
}

struct HeadCacheEntry {
  std::shared_ptr<const TextHead> head;
  std::shared_ptr<const TextHead::OutOfFold> oof;
  json report;
};
std::mutex g_head_mutex;
std::map<uint64_t, HeadCacheEntry> g_head_cache;  // fitted heads of this process (a few per run)

// The task vocabulary: the tasks of the training split (of every query when the file has none). A
// task first met at evaluation then gets the all-zero one-hot of an unknown task, as a live query of
// a new task does in serving, instead of a column whose weights training never moved (measured in
// experiments/loto: held-out task families used to read such a column).
std::vector<std::string> vocabulary_tasks(const TraceSet& traces) {
  const std::vector<std::size_t> rows = traces.split_indices(Split::kTrain);
  if (rows.empty()) return traces.query_task;
  std::vector<std::string> tasks;
  tasks.reserve(rows.size());
  for (std::size_t q : rows) tasks.push_back(traces.query_task[q]);
  return tasks;
}
}  // namespace

QueryFeaturizer QueryFeaturizer::for_traces(const FeaturizerConfig& config, const TraceSet& traces, json* report) {
  QueryFeaturizer f(config, vocabulary_tasks(traces));
  if (config.text.enabled && !traces.has_text()) {
    // An optional block whose input is absent: left out, loudly (the run's features are then the
    // base ones; exports record that there is no head).
    log_warn("features.text: ", traces.source.empty() ? std::string("the trace file") : traces.source,
             " has no query texts (/queries/text): the text head is left out of the features");
    f.config_.text.enabled = false;
    return f;
  }
  if (config.text.enabled && config.text.uses_embedding()) {
    if (!config.encoder.enabled) fail("features.text.input '", text_input_name(config.text.input), "' needs features.encoder");
    f.encoder_.model = fs::absolute(config.encoder.model).lexically_normal().string();
    f.encoder_.name = encoder_name(config.encoder.model);
    f.encoder_.sha256 = encoder_weights_sha256(config.encoder.model);
    f.encoder_.dim = traces.embedding_dim;
    check_trace_embeddings(f.encoder_, traces, "features.encoder");
  }
  if (config.text.enabled) {
    // A process fits each head once: the training and final-evaluation environments, and every
    // checkpoint of an `eval` frontier, read the same trace file with the same features config.
    const uint64_t key = text_head_key(config, traces);
    std::lock_guard<std::mutex> lock(g_head_mutex);
    auto it = g_head_cache.find(key);
    if (it == g_head_cache.end()) {
      HeadCacheEntry e;
      auto oof = std::make_shared<TextHead::OutOfFold>();
      e.head = std::make_shared<const TextHead>(TextHead::fit(config.text, traces, f.tasks_, oof.get(), &e.report));
      e.oof = std::move(oof);
      it = g_head_cache.emplace(key, std::move(e)).first;
    }
    f.head_ = it->second.head;
    f.oof_ = it->second.oof;
    if (report) *report = it->second.report;
  }
  return f;
}

int QueryFeaturizer::task_index(std::string_view task) const {
  auto it = std::lower_bound(tasks_.begin(), tasks_.end(), task,
                             [](const std::string& a, std::string_view b) { return a < b; });
  if (it == tasks_.end() || *it != task) return -1;
  return static_cast<int>(it - tasks_.begin());
}


void QueryFeaturizer::featurize(std::string_view text, std::string_view task, int input_tokens,
                                float* out, const float* embedding) const {
  const int H = config_.hash_dim;
  const int n_max = config_.ngram_max;
  std::fill(out, out + dim(), 0.0f);
  // Hash of each of the last n_max words (lower-cased), kept in a ring; an n-gram's hash is the
  // FNV-1a continuation over its words separated by a 0x1F byte and prefixed by its order.
  uint64_t recent[3] = {0, 0, 0};
  int n_words = 0;
  std::size_t i = 0;
  const std::size_t n = text.size();
  // Counts are accumulated in `out` first, then damped and normalized.
  while (i < n) {
    while (i < n && !is_word_byte(static_cast<unsigned char>(text[i]))) ++i;
    if (i >= n) break;
    uint64_t wh = kFnvOffset;
    while (i < n && is_word_byte(static_cast<unsigned char>(text[i]))) {
      wh ^= ascii_lower(static_cast<unsigned char>(text[i]));
      wh *= kFnvPrime;
      ++i;
    }
    recent[2] = recent[1];
    recent[1] = recent[0];
    recent[0] = wh;
    ++n_words;
    for (int order = 1; order <= n_max && order <= n_words; ++order) {
      uint64_t h = kFnvOffset;
      h ^= static_cast<uint64_t>(order);
      h *= kFnvPrime;
      for (int k = order - 1; k >= 0; --k) {
        // mix the 8 bytes of the word hash, then a separator
        uint64_t w = recent[k];
        for (int b = 0; b < 8; ++b) {
          h ^= (w >> (8 * b)) & 0xFF;
          h *= kFnvPrime;
        }
        h ^= 0x1F;
        h *= kFnvPrime;
      }
      const int bucket = static_cast<int>(h % static_cast<uint64_t>(H));
      const float sign = (h >> 63) ? -1.0f : 1.0f;
      out[bucket] += sign;
    }
  }
  double sq = 0.0;
  for (int b = 0; b < H; ++b) {
    const float c = out[b];
    const float d = c >= 0 ? std::log1p(c) : -std::log1p(-c);
    out[b] = d;
    sq += static_cast<double>(d) * d;
  }
  if (sq > 0) {
    const double inv = 1.0 / std::sqrt(sq);
    for (int b = 0; b < H; ++b) out[b] = static_cast<float>(out[b] * inv);
  }
  const int t = task_index(task);
  if (t >= 0) out[H + t] = 1.0f;
  out[H + static_cast<int>(tasks_.size())] =
      input_tokens >= 0 ? static_cast<float>(std::log1p(static_cast<double>(input_tokens)) / 10.0) : 0.0f;
  if (head_) {
    if (needs_embedding() && embedding == nullptr)
      fail("featurizer: these features read the query's sentence embedding (features.encoder, ", encoder_.name,
           ") and none was given");
    head_->predict(text, t, needs_embedding() ? embedding : nullptr, out + H + static_cast<int>(tasks_.size()) + 1);
  }
}

std::vector<float> QueryFeaturizer::featurize(std::string_view text, std::string_view task,
                                              int input_tokens, const std::vector<float>& embedding) const {
  if (!embedding.empty() && needs_embedding() && embedding.size() != static_cast<std::size_t>(encoder_.dim))
    fail("featurizer: an embedding of ", embedding.size(), " values, the features read ", encoder_.dim);
  std::vector<float> v(dim());
  featurize(text, task, input_tokens, v.data(), embedding.empty() ? nullptr : embedding.data());
  return v;
}

std::vector<float> QueryFeaturizer::featurize_all(const TraceSet& traces) const {
  const std::size_t N = traces.n_queries();
  const std::size_t D = dim();
  std::vector<float> x(N * D);
  const bool emb = needs_embedding();
  if (emb) check_trace_embeddings(encoder_, traces, "features.encoder");
  for (std::size_t q = 0; q < N; ++q) {
    std::string_view text = traces.has_text() ? std::string_view(traces.query_text[q]) : std::string_view();
    const int tokens = q < traces.input_tokens.size() ? traces.input_tokens[q] : -1;
    float* row = x.data() + q * D;
    featurize(text, traces.query_task[q], tokens, row, emb ? traces.embedding_of(q) : nullptr);
    if (oof_ && q < traces.split.size() && traces.split[q] == static_cast<uint8_t>(Split::kTrain)) {
      auto it = oof_->find(traces.query_id[q]);
      if (it != oof_->end())
        std::copy(it->second.begin(), it->second.end(), row + D - static_cast<std::size_t>(head_->n_outputs()));
    }
  }
  return x;
}

json QueryFeaturizer::summary_json() const {
  json j{{"kind", "hashed-ngram-fnv1a64"},
         {"hash_dim", config_.hash_dim},
         {"ngram_max", config_.ngram_max},
         {"tasks", tasks_},
         {"length", "log1p(input_tokens)/10"},
         {"dim", dim()}};
  if (head_) j["text_config"] = head_->config().to_json();
  if (needs_embedding()) j["encoder"] = encoder_.to_json();
  return j;
}

json QueryFeaturizer::to_json() const {
  json j = summary_json();
  if (head_) j["text"] = head_->to_json();
  return j;
}

QueryFeaturizer QueryFeaturizer::from_json(const json& j) {
  try {
    if (j.at("kind").get<std::string>() != "hashed-ngram-fnv1a64")
      fail("featurizer spec: unknown kind '", j.at("kind").get<std::string>(), "'");
    FeaturizerConfig c;
    c.hash_dim = j.at("hash_dim").get<int>();
    c.ngram_max = j.at("ngram_max").get<int>();
    QueryFeaturizer f(c, j.at("tasks").get<std::vector<std::string>>());
    if (j.contains("text") && !j["text"].is_null()) {
      f.head_ = std::make_shared<const TextHead>(TextHead::from_json(j["text"], static_cast<int>(f.tasks_.size())));
      f.config_.text = f.head_->config();
      if (f.needs_embedding()) {
        if (!j.contains("encoder")) fail("featurizer spec: the text head reads an embedding but no encoder is named");
        f.encoder_ = EncoderRef::from_json(j.at("encoder"));
        if (f.encoder_.dim != f.head_->embedding_dim())
          fail("featurizer spec: encoder dim ", f.encoder_.dim, " but the text head reads ", f.head_->embedding_dim());
        f.config_.encoder.enabled = true;
        f.config_.encoder.model = f.encoder_.model;
      }
    }
    if (j.contains("dim") && j["dim"].get<int>() != f.dim())
      fail("featurizer spec: dim is ", j["dim"].get<int>(), " but its parts make ", f.dim());
    return f;
  } catch (const json::exception& e) {
    fail("featurizer spec: ", e.what());
  }
}

}  // namespace conductor
