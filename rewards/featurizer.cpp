#include "rewards/featurizer.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>

#include "core/error.h"
#include "core/log.h"
#include "traces/trace_set.h"

namespace conductor {

FeaturizerConfig FeaturizerConfig::parse(ConfigReader r) {
  FeaturizerConfig c;
  c.hash_dim = r.get_in<int>("hash_dim", c.hash_dim, 1, 1 << 20);
  c.ngram_max = r.get_in<int>("ngram_max", c.ngram_max, 1, 3);
  c.text = TextHeadConfig::parse(r.child("text"));
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
  return h;
}

struct HeadCacheEntry {
  std::shared_ptr<const TextHead> head;
  std::shared_ptr<const TextHead::OutOfFold> oof;
  json report;
};
std::mutex g_head_mutex;
std::map<uint64_t, HeadCacheEntry> g_head_cache;  // fitted heads of this process (a few per run)
}  // namespace

QueryFeaturizer QueryFeaturizer::for_traces(const FeaturizerConfig& config, const TraceSet& traces, json* report) {
  QueryFeaturizer f(config, traces.query_task);
  if (config.text.enabled && !traces.has_text()) {
    // An optional block whose input is absent: left out, loudly (the run's features are then the
    // base ones; exports record that there is no head).
    log_warn("features.text: ", traces.source.empty() ? std::string("the trace file") : traces.source,
             " has no query texts (/queries/text): the text head is left out of the features");
    f.config_.text.enabled = false;
    return f;
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
                                float* out) const {
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
  if (head_) head_->predict(text, t, out + H + static_cast<int>(tasks_.size()) + 1);
}

std::vector<float> QueryFeaturizer::featurize(std::string_view text, std::string_view task,
                                              int input_tokens) const {
  std::vector<float> v(dim());
  featurize(text, task, input_tokens, v.data());
  return v;
}

std::vector<float> QueryFeaturizer::featurize_all(const TraceSet& traces) const {
  const std::size_t N = traces.n_queries();
  const std::size_t D = dim();
  std::vector<float> x(N * D);
  for (std::size_t q = 0; q < N; ++q) {
    std::string_view text = traces.has_text() ? std::string_view(traces.query_text[q]) : std::string_view();
    const int tokens = q < traces.input_tokens.size() ? traces.input_tokens[q] : -1;
    float* row = x.data() + q * D;
    featurize(text, traces.query_task[q], tokens, row);
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
    }
    if (j.contains("dim") && j["dim"].get<int>() != f.dim())
      fail("featurizer spec: dim is ", j["dim"].get<int>(), " but its parts make ", f.dim());
    return f;
  } catch (const json::exception& e) {
    fail("featurizer spec: ", e.what());
  }
}

}  // namespace conductor
