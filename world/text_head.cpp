#include "world/text_head.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <thread>

#include "core/error.h"
#include "core/hash.h"
#include "traces/trace_set.h"

namespace conductor {

// ---------------------------------------------------------------------------------------------
// Config

const char* text_input_name(TextInput i) {
  switch (i) {
    case TextInput::kTfidf: return "tfidf";
    case TextInput::kEmbedding: return "embedding";
    case TextInput::kBoth: return "both";
  }
  return "tfidf";
}

namespace {
bool parse_text_input(const std::string& s, TextInput* out) {
  for (TextInput i : {TextInput::kTfidf, TextInput::kEmbedding, TextInput::kBoth})
    if (s == text_input_name(i)) {
      *out = i;
      return true;
    }
  return false;
}
}  // namespace

TextHeadConfig TextHeadConfig::parse(ConfigReader r) {
  TextHeadConfig c;
  c.enabled = r.get<bool>("enabled", c.enabled);
  parse_text_input(r.get_choice("input", text_input_name(c.input), {"tfidf", "embedding", "both"}), &c.input);
  c.buckets = r.get_in<int>("buckets", c.buckets, 16, 1 << 24);
  c.word_ngram_max = r.get_in<int>("word_ngram_max", c.word_ngram_max, 0, 3);
  {
    const auto v = r.get<std::vector<int>>("char_ngrams", {c.char_ngram_min, c.char_ngram_max});
    if (v.size() != 2 || v[0] < 0 || v[1] < v[0] || v[1] > 8 || (v[0] == 0) != (v[1] == 0))
      r.fail_at("char_ngrams", "expected [min, max] with 1 <= min <= max <= 8, or [0, 0] for none");
    c.char_ngram_min = v[0];
    c.char_ngram_max = v[1];
  }
  {
    c.l2_grid = r.get<std::vector<double>>("l2", c.l2_grid);
    if (c.l2_grid.empty()) r.fail_at("l2", "expected a non-empty list of L2 strengths (> 0)");
    for (double x : c.l2_grid)
      if (!(x > 0) || !std::isfinite(x)) r.fail_at("l2", "every L2 strength must be a finite number > 0");
  }
  c.folds = r.get_in<int>("folds", c.folds, 2, 50);
  c.max_iter = r.get_in<int>("max_iter", c.max_iter, 1, 100000);
  if (c.enabled && c.uses_tfidf() && c.word_ngram_max == 0 && c.char_ngram_min == 0)
    r.fail_at("word_ngram_max", "the text head needs word or character n-grams (both are off)");
  r.finish();
  return c;
}

json TextHeadConfig::to_json() const {
  json j{{"enabled", enabled},       {"buckets", buckets},   {"word_ngram_max", word_ngram_max},
         {"char_ngrams", {char_ngram_min, char_ngram_max}}, {"l2", l2_grid},
         {"folds", folds},           {"max_iter", max_iter}};
  if (input != TextInput::kTfidf) j["input"] = text_input_name(input);  // absent: tfidf (older exports)
  return j;
}

TextHeadConfig TextHeadConfig::from_json(const json& j) {
  TextHeadConfig c;
  c.enabled = j.at("enabled").get<bool>();
  c.buckets = j.at("buckets").get<int>();
  c.word_ngram_max = j.at("word_ngram_max").get<int>();
  c.char_ngram_min = j.at("char_ngrams").at(0).get<int>();
  c.char_ngram_max = j.at("char_ngrams").at(1).get<int>();
  c.l2_grid = j.at("l2").get<std::vector<double>>();
  c.folds = j.at("folds").get<int>();
  c.max_iter = j.at("max_iter").get<int>();
  if (j.contains("input") && !parse_text_input(j.at("input").get<std::string>(), &c.input))
    fail("featurizer spec: text head input '", j.at("input").get<std::string>(), "' (expected tfidf, embedding or both)");
  if (c.buckets < 16 || c.word_ngram_max < 0 || c.word_ngram_max > 3 || c.char_ngram_min < 0 ||
      c.char_ngram_max < c.char_ngram_min || c.char_ngram_max > 8)
    fail("featurizer spec: text head config out of range: ", j.dump());
  return c;
}

// ---------------------------------------------------------------------------------------------
// Hashing

namespace {


inline uint64_t mix_u64(uint64_t h, uint64_t w) {
  for (int b = 0; b < 8; ++b) {
    h ^= (w >> (8 * b)) & 0xFF;
    h *= kFnvPrime;
  }
  return h;
}

// Buckets of every n-gram occurrence of `text` (with repeats), unsorted.
void ngram_buckets(const TextHeadConfig& c, std::string_view text, std::vector<uint32_t>* out) {
  out->clear();
  const uint64_t B = static_cast<uint64_t>(c.buckets);
  uint64_t recent[3] = {0, 0, 0};
  int n_words = 0;
  std::string word;
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    while (i < n && !is_word_byte(static_cast<unsigned char>(text[i]))) ++i;
    if (i >= n) break;
    word.assign(1, ' ');
    while (i < n && is_word_byte(static_cast<unsigned char>(text[i]))) word.push_back(static_cast<char>(ascii_lower(static_cast<unsigned char>(text[i++]))));
    word.push_back(' ');
    // word n-grams over the words without padding
    if (c.word_ngram_max > 0) {
      const uint64_t wh = fnv1a64(std::string_view(word).substr(1, word.size() - 2));
      recent[2] = recent[1];
      recent[1] = recent[0];
      recent[0] = wh;
      ++n_words;
      for (int order = 1; order <= c.word_ngram_max && order <= n_words; ++order) {
        uint64_t h = kFnvOffset;
        h ^= 'w';
        h *= kFnvPrime;
        h ^= static_cast<uint64_t>(order);
        h *= kFnvPrime;
        for (int k = order - 1; k >= 0; --k) h = mix_u64(h, recent[k]);
        out->push_back(static_cast<uint32_t>(h % B));
      }
    }
    // character n-grams inside the padded word
    if (c.char_ngram_min > 0) {
      const int L = static_cast<int>(word.size());
      for (int len = c.char_ngram_min; len <= c.char_ngram_max; ++len) {
        if (len > L) break;
        for (int s = 0; s + len <= L; ++s) {
          uint64_t h = kFnvOffset;
          h ^= 'c';
          h *= kFnvPrime;
          h = fnv1a64(std::string_view(word).substr(static_cast<std::size_t>(s), static_cast<std::size_t>(len)), h);
          out->push_back(static_cast<uint32_t>(h % B));
        }
        if (len == L) break;
      }
    }
  }
}

// (bucket, count) pairs sorted by bucket.
std::vector<std::pair<uint32_t, int>> bucket_counts(const TextHeadConfig& c, std::string_view text,
                                                    std::vector<uint32_t>* scratch) {
  ngram_buckets(c, text, scratch);
  std::sort(scratch->begin(), scratch->end());
  std::vector<std::pair<uint32_t, int>> out;
  for (std::size_t i = 0; i < scratch->size();) {
    std::size_t j = i;
    while (j < scratch->size() && (*scratch)[j] == (*scratch)[i]) ++j;
    out.emplace_back((*scratch)[i], static_cast<int>(j - i));
    i = j;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// base64 of float32 / uint32 arrays (little-endian bytes)

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string b64_encode(const unsigned char* p, std::size_t n) {
  std::string s;
  s.reserve((n + 2) / 3 * 4);
  for (std::size_t i = 0; i < n; i += 3) {
    const uint32_t v = (uint32_t(p[i]) << 16) | (i + 1 < n ? uint32_t(p[i + 1]) << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    s.push_back(kB64[(v >> 18) & 63]);
    s.push_back(kB64[(v >> 12) & 63]);
    s.push_back(i + 1 < n ? kB64[(v >> 6) & 63] : '=');
    s.push_back(i + 2 < n ? kB64[v & 63] : '=');
  }
  return s;
}

std::vector<unsigned char> b64_decode(const std::string& s, const char* field) {
  int val[256];
  std::fill(val, val + 256, -1);
  for (int i = 0; i < 64; ++i) val[static_cast<unsigned char>(kB64[i])] = i;
  if (s.size() % 4 != 0) fail("featurizer spec: text.", field, ": base64 length ", s.size(), " is not a multiple of 4");
  std::vector<unsigned char> out;
  out.reserve(s.size() / 4 * 3);
  for (std::size_t i = 0; i < s.size(); i += 4) {
    int v[4];
    for (int k = 0; k < 4; ++k) {
      const unsigned char ch = static_cast<unsigned char>(s[i + k]);
      v[k] = ch == '=' && k >= 2 ? 0 : val[ch];
      if (v[k] < 0) fail("featurizer spec: text.", field, ": invalid base64 character at offset ", i + k);
    }
    const uint32_t x = (uint32_t(v[0]) << 18) | (uint32_t(v[1]) << 12) | (uint32_t(v[2]) << 6) | uint32_t(v[3]);
    out.push_back(static_cast<unsigned char>(x >> 16));
    if (s[i + 2] != '=') out.push_back(static_cast<unsigned char>((x >> 8) & 0xFF));
    if (s[i + 3] != '=') out.push_back(static_cast<unsigned char>(x & 0xFF));
  }
  return out;
}

template <class T>
std::string encode_array(const std::vector<T>& v) {
  static_assert(sizeof(T) == 4, "4-byte elements");
  std::vector<unsigned char> bytes(v.size() * 4);
  for (std::size_t i = 0; i < v.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, &v[i], 4);
    for (int b = 0; b < 4; ++b) bytes[i * 4 + b] = static_cast<unsigned char>((u >> (8 * b)) & 0xFF);
  }
  return b64_encode(bytes.data(), bytes.size());
}

template <class T>
std::vector<T> decode_array(const json& j, const char* field, std::size_t expected) {
  const std::vector<unsigned char> bytes = b64_decode(j.at(field).get<std::string>(), field);
  if (bytes.size() != expected * 4)
    fail("featurizer spec: text.", field, ": ", bytes.size() / 4, " values, expected ", expected);
  std::vector<T> v(expected);
  for (std::size_t i = 0; i < expected; ++i) {
    uint32_t u = 0;
    for (int b = 0; b < 4; ++b) u |= uint32_t(bytes[i * 4 + b]) << (8 * b);
    std::memcpy(&v[i], &u, 4);
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Sparse logistic regression by L-BFGS

struct Csr {
  std::vector<std::size_t> ptr{0};
  std::vector<uint32_t> col;
  std::vector<float> val;
  std::size_t rows() const { return ptr.size() - 1; }
  void add(const SparseRow& r) {
    for (const auto& [c, v] : r) {
      col.push_back(c);
      val.push_back(v);
    }
    ptr.push_back(col.size());
  }
};

inline double softplus(double z) { return std::max(z, 0.0) + std::log1p(std::exp(-std::abs(z))); }
inline double sigmoid(double z) { return z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z)); }

inline double row_logit(const Csr& X, std::size_t r, const std::vector<double>& x, std::size_t D) {
  double z = x[D];
  for (std::size_t k = X.ptr[r]; k < X.ptr[r + 1]; ++k) z += x[X.col[k]] * X.val[k];
  return z;
}

// sum_i softplus(z_i) - y_i z_i + l2/2 |w|^2 over `rows` of X (bias x[D] not regularized).
double objective(const Csr& X, const std::vector<uint32_t>& rows, const std::vector<double>& y, double l2,
                 const std::vector<double>& x, std::size_t D, std::vector<double>* g) {
  std::fill(g->begin(), g->end(), 0.0);
  double f = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const std::size_t r = rows[i];
    const double z = row_logit(X, r, x, D);
    f += softplus(z) - y[i] * z;
    const double d = sigmoid(z) - y[i];
    for (std::size_t k = X.ptr[r]; k < X.ptr[r + 1]; ++k) (*g)[X.col[k]] += d * X.val[k];
    (*g)[D] += d;
  }
  double sq = 0;
  for (std::size_t j = 0; j < D; ++j) {
    sq += x[j] * x[j];
    (*g)[j] += l2 * x[j];
  }
  return f + 0.5 * l2 * sq;
}

// Minimizes from the starting point in *x (size D + 1).
int fit_lbfgs(const Csr& X, const std::vector<uint32_t>& rows, const std::vector<double>& y, double l2,
              std::size_t D, int max_iter, std::vector<double>* x) {
  const std::size_t P = D + 1;
  constexpr int kMem = 8;
  std::vector<std::vector<double>> S, Y;
  std::vector<double> rho;
  std::vector<double> g(P), g_new(P), d(P), x_new(P), alpha(kMem);
  double f = objective(X, rows, y, l2, *x, D, &g);
  const double f_scale = std::max(1.0, static_cast<double>(rows.size()));
  int it = 0;
  for (; it < max_iter; ++it) {
    double gmax = 0;
    for (double v : g) gmax = std::max(gmax, std::abs(v));
    if (gmax < 1e-6 * f_scale / 100.0) break;
    // two-loop recursion
    d = g;
    const int m = static_cast<int>(S.size());
    for (int k = m - 1; k >= 0; --k) {
      double a = 0;
      for (std::size_t j = 0; j < P; ++j) a += S[k][j] * d[j];
      a *= rho[k];
      alpha[k] = a;
      for (std::size_t j = 0; j < P; ++j) d[j] -= a * Y[k][j];
    }
    if (m > 0) {
      double sy = 0, yy = 0;
      for (std::size_t j = 0; j < P; ++j) {
        sy += S[m - 1][j] * Y[m - 1][j];
        yy += Y[m - 1][j] * Y[m - 1][j];
      }
      const double gamma = sy / yy;
      for (double& v : d) v *= gamma;
    } else {
      const double gn = std::sqrt(std::inner_product(g.begin(), g.end(), g.begin(), 0.0));
      const double s0 = 1.0 / std::max(gn, 1e-12);
      for (double& v : d) v *= s0;
    }
    for (int k = 0; k < m; ++k) {
      double b = 0;
      for (std::size_t j = 0; j < P; ++j) b += Y[k][j] * d[j];
      b *= rho[k];
      for (std::size_t j = 0; j < P; ++j) d[j] += S[k][j] * (alpha[k] - b);
    }
    for (double& v : d) v = -v;
    double gd = std::inner_product(g.begin(), g.end(), d.begin(), 0.0);
    if (!(gd < 0)) {  // not a descent direction: restart from the gradient
      S.clear();
      Y.clear();
      rho.clear();
      const double gn = std::sqrt(std::inner_product(g.begin(), g.end(), g.begin(), 0.0));
      for (std::size_t j = 0; j < P; ++j) d[j] = -g[j] / std::max(gn, 1e-12);
      gd = std::inner_product(g.begin(), g.end(), d.begin(), 0.0);
    }
    double step = 1.0, f_new = f;
    bool accepted = false;
    for (int ls = 0; ls < 40; ++ls) {
      for (std::size_t j = 0; j < P; ++j) x_new[j] = (*x)[j] + step * d[j];
      f_new = objective(X, rows, y, l2, x_new, D, &g_new);
      if (f_new <= f + 1e-4 * step * gd) {
        accepted = true;
        break;
      }
      step *= 0.5;
    }
    if (!accepted) break;
    std::vector<double> s(P), yv(P);
    double sy = 0;
    for (std::size_t j = 0; j < P; ++j) {
      s[j] = x_new[j] - (*x)[j];
      yv[j] = g_new[j] - g[j];
      sy += s[j] * yv[j];
    }
    const double f_old = f;
    x->swap(x_new);
    g.swap(g_new);
    f = f_new;
    if (sy > 1e-12) {
      if (static_cast<int>(S.size()) == kMem) {
        S.erase(S.begin());
        Y.erase(Y.begin());
        rho.erase(rho.begin());
      }
      S.push_back(std::move(s));
      Y.push_back(std::move(yv));
      rho.push_back(1.0 / sy);
    }
    if (f_old - f <= 1e-6 * std::max(1.0, std::abs(f))) break;
  }
  return it;
}

inline double clip_p(double p) { return std::min(std::max(p, 1e-12), 1 - 1e-12); }

// Checks that the traces hold what the head reads and is fitted on; returns the train split's
// query indices (non-empty).
std::vector<std::size_t> checked_train_split(const TextHeadConfig& config, const TraceSet& T) {
  const std::string src = T.source.empty() ? std::string("traces") : T.source;
  if (config.uses_tfidf() && !T.has_text())
    fail(src, ": features.text needs the query texts (/queries/text), and this trace file has none");
  if (config.uses_embedding() && !T.has_embedding())
    fail(src, ": features.text.input '", text_input_name(config.input), "' needs the query embeddings "
         "(/queries/embedding; add them with `conductor traces embed`), and this trace file has none");
  if (!T.has_outcomes()) fail(src, ": features.text is fitted on logged qualities, and this trace file has no /outcomes");
  std::vector<std::size_t> train = T.split_indices(Split::kTrain);
  if (train.empty()) fail(src, ": features.text is fitted on the train split, which is empty");
  return train;
}

// What every per-model fit reads: the training rows, their folds and the L2 grid.
struct CrossFitData {
  const TextHeadConfig& config;
  const TraceSet& T;
  const std::vector<std::size_t>& train;
  const Csr& X;
  const std::vector<int>& fold;
  const std::vector<double>& grid;  // strongest to weakest
  std::size_t D, M;
};

// Where one model's fit writes: its slots of the head's per-model arrays and of the shared
// out-of-fold predictions (column m of oof_p), so models can be fitted on separate threads.
struct ModelFitSlots {
  double& l2;
  double& best_loss;
  long& iters;
  float* weights;  // D entries
  float& bias;
  std::vector<float>& oof_p;
};

// Model m: picks the L2 of the grid with the lowest out-of-fold log loss (warm-started along the
// grid), keeps that L2's out-of-fold predictions, then refits on all its logged rows.
void fit_model(const CrossFitData& d, std::size_t m, ModelFitSlots out) {
  const TextHeadConfig& config = d.config;
  const std::size_t D = d.D, M = d.M, n_train = d.train.size();
  std::vector<uint32_t> all_rows;
  std::vector<double> all_y;
  for (std::size_t i = 0; i < n_train; ++i) {
    const float qv = d.T.quality[d.T.at(d.train[i], m)];
    if (std::isnan(qv)) continue;
    all_rows.push_back(static_cast<uint32_t>(i));
    all_y.push_back(std::min(1.0, std::max(0.0, static_cast<double>(qv))));
  }
  if (all_rows.empty()) return;  // no logged quality: weights 0, p = 0.5
  std::vector<std::vector<double>> xf(static_cast<std::size_t>(config.folds), std::vector<double>(D + 1, 0.0));
  std::vector<float> p_fold(n_train);
  for (double l2 : d.grid) {
    double loss = 0;
    for (int k = 0; k < config.folds; ++k) {
      std::vector<uint32_t> rows;
      std::vector<double> y;
      for (std::size_t j = 0; j < all_rows.size(); ++j)
        if (d.fold[all_rows[j]] != k) {
          rows.push_back(all_rows[j]);
          y.push_back(all_y[j]);
        }
      if (rows.empty()) continue;
      out.iters += fit_lbfgs(d.X, rows, y, l2, D, config.max_iter, &xf[static_cast<std::size_t>(k)]);
      for (std::size_t i = 0; i < n_train; ++i)
        if (d.fold[i] == k) p_fold[i] = static_cast<float>(sigmoid(row_logit(d.X, i, xf[static_cast<std::size_t>(k)], D)));
    }
    for (std::size_t j = 0; j < all_rows.size(); ++j) {
      const double p = clip_p(p_fold[all_rows[j]]);
      loss -= all_y[j] * std::log(p) + (1 - all_y[j]) * std::log(1 - p);
    }
    loss /= static_cast<double>(all_rows.size());
    if (loss < out.best_loss) {
      out.best_loss = loss;
      out.l2 = l2;
      for (std::size_t i = 0; i < n_train; ++i) out.oof_p[i * M + m] = p_fold[i];
    }
  }
  std::vector<double> x(D + 1, 0.0);
  out.iters += fit_lbfgs(d.X, all_rows, all_y, out.l2, D, config.max_iter, &x);
  for (std::size_t j = 0; j < D; ++j) out.weights[j] = static_cast<float>(x[j]);
  out.bias = static_cast<float>(x[D]);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// TextHead

SparseRow TextHead::vectorize(std::string_view text, int task, const float* embedding) const {
  std::vector<uint32_t> scratch;
  if (!config_.uses_tfidf()) return row_of({}, task, embedding);
  return row_of(bucket_counts(config_, text, &scratch), task, embedding);
}

SparseRow TextHead::row_of(const std::vector<std::pair<uint32_t, int>>& counts, int task, const float* embedding) const {
  SparseRow row;
  double sq = 0;
  for (const auto& [b, n] : counts) {
    auto it = std::lower_bound(buckets_.begin(), buckets_.end(), b);
    if (it == buckets_.end() || *it != b) continue;
    const uint32_t col = static_cast<uint32_t>(it - buckets_.begin());
    const float v = static_cast<float>((1.0 + std::log(static_cast<double>(n))) * idf_[col]);
    row.emplace_back(col, v);
    sq += static_cast<double>(v) * v;
  }
  if (sq > 0) {
    const double inv = 1.0 / std::sqrt(sq);
    for (auto& e : row) e.second = static_cast<float>(e.second * inv);
  }
  const uint32_t A = static_cast<uint32_t>(buckets_.size());
  if (emb_dim_ > 0) {
    CONDUCTOR_CHECK(embedding != nullptr, "text head: input '", text_input_name(config_.input),
                    "' needs the query's embedding and none was given");
    for (int k = 0; k < emb_dim_; ++k) row.emplace_back(A + static_cast<uint32_t>(k), embedding[k]);
  }
  if (task >= 0 && task < n_tasks_) row.emplace_back(A + static_cast<uint32_t>(emb_dim_ + task), 1.0f);
  return row;
}

void TextHead::predict(std::string_view text, int task, const float* embedding, float* out) const {
  const SparseRow row = vectorize(text, task, embedding);
  const std::size_t D = buckets_.size() + static_cast<std::size_t>(emb_dim_ + n_tasks_);
  for (std::size_t m = 0; m < models_.size(); ++m) {
    double z = bias_[m];
    const float* w = weights_.data() + m * D;
    for (const auto& [c, v] : row) z += static_cast<double>(w[c]) * v;
    out[m] = static_cast<float>(sigmoid(z));
  }
}

TextHead TextHead::fit(const TextHeadConfig& config, const TraceSet& T, const std::vector<std::string>& tasks,
                       OutOfFold* oof, json* report) {
  const std::vector<std::size_t> train = checked_train_split(config, T);

  TextHead h;
  h.config_ = config;
  h.n_tasks_ = static_cast<int>(tasks.size());
  h.models_ = T.model_name;
  h.emb_dim_ = config.uses_embedding() ? T.embedding_dim : 0;

  // Document frequencies on the training texts.
  std::vector<std::vector<std::pair<uint32_t, int>>> docs(train.size());
  if (config.uses_tfidf()) {
    std::vector<uint32_t> scratch;
    std::vector<int> df(static_cast<std::size_t>(config.buckets), 0);
    for (std::size_t i = 0; i < train.size(); ++i) {
      docs[i] = bucket_counts(config, T.query_text[train[i]], &scratch);
      for (const auto& e : docs[i]) ++df[e.first];
    }
    const double n_docs = static_cast<double>(train.size());
    for (uint32_t b = 0; b < static_cast<uint32_t>(config.buckets); ++b)
      if (df[b] > 0) {
        h.buckets_.push_back(b);
        h.idf_.push_back(static_cast<float>(std::log((1.0 + n_docs) / (1.0 + df[b])) + 1.0));
      }
  }
  const std::size_t A = h.buckets_.size();
  const std::size_t D = A + static_cast<std::size_t>(h.emb_dim_) + tasks.size();

  // Training rows.
  Csr X;
  auto task_of = [&](std::size_t q) {
    auto it = std::lower_bound(tasks.begin(), tasks.end(), T.query_task[q]);
    return it != tasks.end() && *it == T.query_task[q] ? static_cast<int>(it - tasks.begin()) : -1;
  };
  for (std::size_t i = 0; i < train.size(); ++i)
    X.add(h.row_of(docs[i], task_of(train[i]), h.emb_dim_ > 0 ? T.embedding_of(train[i]) : nullptr));
  docs.clear();
  std::vector<int> fold(train.size());
  for (std::size_t i = 0; i < train.size(); ++i)
    fold[i] = static_cast<int>(fnv1a64(T.query_id[train[i]]) % static_cast<uint64_t>(config.folds));

  const std::size_t M = T.n_models();
  h.weights_.assign(M * D, 0.0f);
  h.bias_.assign(M, 0.0f);
  h.l2_.assign(M, config.l2_grid.front());
  std::vector<float> oof_p(train.size() * M, 0.5f);
  std::vector<double> best_loss(M, std::numeric_limits<double>::infinity());
  std::vector<long> iters(M, 0);
  // L2 grid from strongest to weakest, warm-started along the path.
  std::vector<double> grid = config.l2_grid;
  std::sort(grid.begin(), grid.end(), std::greater<double>());

  const CrossFitData data{config, T, train, X, fold, grid, D, M};
  auto fit_model_m = [&](std::size_t m) {
    fit_model(data, m, {h.l2_[m], best_loss[m], iters[m], h.weights_.data() + m * D, h.bias_[m], oof_p});
  };
  // Models are independent: two threads, each fitting every other model (same result either way).
  const unsigned n_threads = std::min<unsigned>(2u, std::max(1u, std::thread::hardware_concurrency()));
  if (n_threads > 1 && M > 1) {
    std::thread t([&] {
      for (std::size_t m = 1; m < M; m += 2) fit_model_m(m);
    });
    for (std::size_t m = 0; m < M; m += 2) fit_model_m(m);
    t.join();
  } else {
    for (std::size_t m = 0; m < M; ++m) fit_model_m(m);
  }

  if (oof) {
    oof->clear();
    for (std::size_t i = 0; i < train.size(); ++i)
      (*oof)[T.query_id[train[i]]] = std::vector<float>(oof_p.begin() + static_cast<std::ptrdiff_t>(i * M),
                                                        oof_p.begin() + static_cast<std::ptrdiff_t>((i + 1) * M));
  }
  if (report) {
    json r = json::object();
    r["active_buckets"] = A;
    if (config.input != TextInput::kTfidf) {  // TF-IDF reports stay as they were
      r["input"] = text_input_name(config.input);
      r["embedding_dim"] = h.emb_dim_;
    }
    r["train_nonzeros"] = X.col.size();
    r["train_queries"] = train.size();
    json per = json::array();
    for (std::size_t m = 0; m < M; ++m)
      per.push_back({{"model", h.models_[m]},
                     {"l2", h.l2_[m]},
                     {"lbfgs_iterations", iters[m]},
                     {"oof_log_loss", std::isfinite(best_loss[m]) ? json(best_loss[m]) : json(nullptr)}});
    r["models"] = per;
    *report = r;
  }
  return h;
}

json TextHead::to_json() const {
  json j{{"config", config_.to_json()},
         {"models", models_},
         {"l2", l2_},
         {"n_buckets_active", buckets_.size()},
         {"buckets", encode_array(buckets_)},
         {"idf", encode_array(idf_)},
         {"weights", encode_array(weights_)},
         {"bias", encode_array(bias_)}};
  if (emb_dim_ > 0) j["embedding_dim"] = emb_dim_;
  return j;
}

TextHead TextHead::from_json(const json& j, int n_tasks) {
  TextHead h;
  try {
    h.config_ = TextHeadConfig::from_json(j.at("config"));
    h.n_tasks_ = n_tasks;
    h.models_ = j.at("models").get<std::vector<std::string>>();
    h.l2_ = j.at("l2").get<std::vector<double>>();
    const std::size_t A = j.at("n_buckets_active").get<std::size_t>();
    h.buckets_ = decode_array<uint32_t>(j, "buckets", A);
    h.idf_ = decode_array<float>(j, "idf", A);
    h.emb_dim_ = j.value("embedding_dim", 0);
    if (h.emb_dim_ < 0 || (h.emb_dim_ > 0) != h.config_.uses_embedding())
      fail("featurizer spec: text head embedding_dim ", h.emb_dim_, " does not fit its input '",
           text_input_name(h.config_.input), "'");
    const std::size_t M = h.models_.size();
    h.weights_ = decode_array<float>(j, "weights", M * (A + static_cast<std::size_t>(h.emb_dim_ + n_tasks)));
    h.bias_ = decode_array<float>(j, "bias", M);
  } catch (const json::exception& e) {
    fail("featurizer spec: text head: ", e.what());
  }
  for (std::size_t i = 0; i < h.buckets_.size(); ++i)
    if (h.buckets_[i] >= static_cast<uint32_t>(h.config_.buckets) || (i > 0 && h.buckets_[i] <= h.buckets_[i - 1]))
      fail("featurizer spec: text.buckets: entry ", i, " (", h.buckets_[i], ") is not increasing within 0..",
           h.config_.buckets - 1);
  return h;
}

}  // namespace conductor
