#include "world/predictors.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace conductor {

double roc_auc(const std::vector<double>& score, const std::vector<uint8_t>& label) {
  CONDUCTOR_CHECK(score.size() == label.size());
  const std::size_t n = score.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return score[a] < score[b]; });
  double rank_sum_pos = 0.0;
  std::size_t n_pos = 0;
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i;
    while (j < n && score[order[j]] == score[order[i]]) ++j;
    const double avg_rank = 0.5 * (static_cast<double>(i + 1) + static_cast<double>(j));  // 1-based
    for (std::size_t k = i; k < j; ++k)
      if (label[order[k]]) {
        rank_sum_pos += avg_rank;
        ++n_pos;
      }
    i = j;
  }
  const std::size_t n_neg = n - n_pos;
  if (n_pos == 0 || n_neg == 0) return std::nan("");
  const double u = rank_sum_pos - static_cast<double>(n_pos) * (n_pos + 1) / 2.0;
  return u / (static_cast<double>(n_pos) * static_cast<double>(n_neg));
}

double brier_score(const std::vector<double>& p, const std::vector<double>& y) {
  CONDUCTOR_CHECK(p.size() == y.size());
  if (p.empty()) return std::nan("");
  double s = 0;
  for (std::size_t i = 0; i < p.size(); ++i) s += (p[i] - y[i]) * (p[i] - y[i]);
  return s / p.size();
}

double log_loss(const std::vector<double>& p, const std::vector<double>& y) {
  CONDUCTOR_CHECK(p.size() == y.size());
  if (p.empty()) return std::nan("");
  double s = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const double q = std::min(std::max(p[i], 1e-12), 1.0 - 1e-12);
    s -= y[i] * std::log(q) + (1.0 - y[i]) * std::log(1.0 - q);
  }
  return s / p.size();
}

namespace {
inline double sigmoid(double z) {
  if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1.0 + e);
}
double dot(const Eigen::VectorXd& w, const float* x) {
  double s = 0;
  for (Eigen::Index j = 0; j < w.size(); ++j) s += w[j] * x[j];
  return s;
}
}  // namespace

void LogisticRegression::fit(const Eigen::MatrixXd& X, const Eigen::VectorXd& y, double l2,
                             int max_iter, double tol) {
  const Eigen::Index n = X.rows(), d = X.cols();
  CONDUCTOR_CHECK(y.size() == n && n > 0);
  // Augmented design [X 1]; the bias (last coefficient) is not penalized.
  Eigen::MatrixXd A(n, d + 1);
  A.leftCols(d) = X;
  A.col(d).setOnes();
  Eigen::VectorXd beta = Eigen::VectorXd::Zero(d + 1);
  const double ybar = std::min(std::max(y.mean(), 1e-6), 1 - 1e-6);
  beta[d] = std::log(ybar / (1 - ybar));
  Eigen::VectorXd reg = Eigen::VectorXd::Constant(d + 1, l2);
  reg[d] = 1e-8;  // keeps the Hessian positive definite when a class is absent
  iterations_ = 0;
  for (int it = 0; it < max_iter; ++it) {
    Eigen::VectorXd z = A * beta;
    Eigen::VectorXd p(n), wgt(n);
    for (Eigen::Index i = 0; i < n; ++i) {
      p[i] = sigmoid(z[i]);
      wgt[i] = std::max(p[i] * (1 - p[i]), 1e-10);
    }
    Eigen::VectorXd grad = A.transpose() * (p - y) + reg.cwiseProduct(beta);
    Eigen::MatrixXd H = A.transpose() * (A.array().colwise() * wgt.array()).matrix();
    H.diagonal() += reg;
    Eigen::VectorXd step = H.ldlt().solve(grad);
    beta -= step;
    ++iterations_;
    if (step.norm() <= tol * (1.0 + beta.norm())) break;
  }
  w_ = beta.head(d);
  b_ = beta[d];
}

double LogisticRegression::predict(const float* x) const { return sigmoid(dot(w_, x) + b_); }
double LogisticRegression::predict(const Eigen::VectorXd& x) const { return sigmoid(w_.dot(x) + b_); }

void RidgeRegression::fit(const Eigen::MatrixXd& X, const Eigen::VectorXd& y, double l2) {
  const Eigen::Index n = X.rows();
  CONDUCTOR_CHECK(y.size() == n && n > 0);
  // Centering makes the unpenalized bias exact.
  Eigen::RowVectorXd xm = X.colwise().mean();
  const double ym = y.mean();
  Eigen::MatrixXd Xc = X.rowwise() - xm;
  Eigen::MatrixXd G = Xc.transpose() * Xc;
  G.diagonal().array() += l2;
  w_ = G.ldlt().solve(Xc.transpose() * (y.array() - ym).matrix());
  b_ = ym - xm.dot(w_);
}

double RidgeRegression::predict(const float* x) const { return dot(w_, x) + b_; }

LogisticRegression LogisticRegression::from_coefficients(Eigen::VectorXd w, double b) {
  LogisticRegression r;
  r.w_ = std::move(w);
  r.b_ = b;
  return r;
}

RidgeRegression RidgeRegression::from_coefficients(Eigen::VectorXd w, double b) {
  RidgeRegression r;
  r.w_ = std::move(w);
  r.b_ = b;
  return r;
}
double RidgeRegression::predict(const Eigen::VectorXd& x) const { return w_.dot(x) + b_; }

double FittedLatency::mean(int output_tokens) const {
  return std::max(0.0, intercept_s + per_token_s * std::max(0, output_tokens)) *
         std::exp(0.5 * log_sigma * log_sigma);
}

double FittedLatency::sample(int output_tokens, Rng& rng) const {
  const double base = std::max(1e-3, intercept_s + per_token_s * std::max(0, output_tokens));
  return base * std::exp(log_sigma * rng.normal());
}

PredictorConfig PredictorConfig::parse(ConfigReader r) {
  PredictorConfig c;
  c.quality_l2 = r.get_in<double>("quality_l2", c.quality_l2, 0.0, 1e12);
  c.tokens_l2 = r.get_in<double>("tokens_l2", c.tokens_l2, 0.0, 1e12);
  c.min_latency_rows = r.get_in<int>("min_latency_rows", c.min_latency_rows, 2, 1 << 30);
  ConfigReader p = r.child("latency_prior");
  c.latency_prior.ttft_s = p.get_in<double>("ttft_s", c.latency_prior.ttft_s, 0.0, 1e6);
  c.latency_prior.tokens_per_s = p.get_in<double>("tokens_per_s", c.latency_prior.tokens_per_s, 1e-6, 1e9);
  c.latency_prior.log_sigma = p.get_in<double>("log_sigma", c.latency_prior.log_sigma, 0.0, 10.0);
  p.finish();
  r.finish();
  return c;
}

namespace {
Eigen::MatrixXd gather_rows(const std::vector<float>& features, int dim, const std::vector<std::size_t>& rows) {
  Eigen::MatrixXd X(static_cast<Eigen::Index>(rows.size()), dim);
  for (std::size_t r = 0; r < rows.size(); ++r)
    for (int j = 0; j < dim; ++j) X(r, j) = features[rows[r] * dim + j];
  return X;
}
}  // namespace

WorldPredictors WorldPredictors::fit(const TraceSet& traces, const std::vector<float>& features, int dim,
                                     Split train_split, const PredictorConfig& config) {
  const std::size_t M = traces.n_models();
  CONDUCTOR_CHECK(features.size() == traces.n_queries() * static_cast<std::size_t>(dim));
  if (!traces.has_outcomes()) fail("rewards: the trace set has no /outcomes: nothing to fit predictors on");
  const std::vector<std::size_t> split_rows = traces.split_indices(train_split);
  WorldPredictors P;
  P.quality_.resize(M);
  P.tokens_.resize(M);
  P.has_tokens_.assign(M, 0);
  P.mean_tokens_.assign(M, 0.0);
  P.latency_.resize(M);
  P.mean_cost_.assign(M, 0.0);
  P.binary_.assign(M, 1);
  P.train_rows_.assign(M, 0);
  for (std::size_t m = 0; m < M; ++m) {
    // quality
    std::vector<std::size_t> rows;
    std::vector<double> yq;
    for (std::size_t q : split_rows) {
      const float v = traces.quality[traces.at(q, m)];
      if (std::isnan(v)) continue;
      rows.push_back(q);
      yq.push_back(v);
      if (v != 0.0f && v != 1.0f) P.binary_[m] = 0;
    }
    if (rows.empty())
      fail("rewards: worker '", traces.model_name[m], "' has no logged quality on the ", split_name(train_split),
           " split: cannot fit its quality predictor");
    P.train_rows_[m] = static_cast<int>(rows.size());
    P.quality_[m].fit(gather_rows(features, dim, rows), Eigen::Map<Eigen::VectorXd>(yq.data(), yq.size()),
                      config.quality_l2);
    // output tokens
    std::vector<std::size_t> trows;
    std::vector<double> yt;
    for (std::size_t q : split_rows) {
      const int32_t t = traces.output_tokens.empty() ? -1 : traces.output_tokens[traces.at(q, m)];
      if (t < 0) continue;
      trows.push_back(q);
      yt.push_back(std::log1p(static_cast<double>(t)));
    }
    if (!trows.empty()) {
      P.has_tokens_[m] = 1;
      P.tokens_[m].fit(gather_rows(features, dim, trows), Eigen::Map<Eigen::VectorXd>(yt.data(), yt.size()),
                       config.tokens_l2);
      double s = 0;
      for (double v : yt) s += std::expm1(v);
      P.mean_tokens_[m] = s / yt.size();
    }
    // latency = a + b * tokens
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int nl = 0;
    std::vector<std::pair<double, double>> pts;
    for (std::size_t q : split_rows) {
      const std::size_t k = traces.at(q, m);
      const float lat = traces.latency_s.empty() ? kMissingF : traces.latency_s[k];
      const int32_t t = traces.output_tokens.empty() ? -1 : traces.output_tokens[k];
      if (std::isnan(lat) || t < 0 || lat <= 0) continue;
      pts.emplace_back(t, lat);
      sx += t; sy += lat; sxx += double(t) * t; sxy += double(t) * lat;
      ++nl;
    }
    FittedLatency& L = P.latency_[m];
    if (nl >= config.min_latency_rows) {
      const double mx = sx / nl, my = sy / nl;
      const double vx = sxx / nl - mx * mx;
      L.per_token_s = vx > 1e-12 ? std::max(0.0, (sxy / nl - mx * my) / vx) : 0.0;
      L.intercept_s = std::max(1e-3, my - L.per_token_s * mx);
      double s2 = 0;
      for (auto& [t, lat] : pts) {
        const double r = std::log(lat / std::max(1e-3, L.intercept_s + L.per_token_s * t));
        s2 += r * r;
      }
      L.log_sigma = std::sqrt(s2 / nl);
      L.fitted = true;
      L.rows = nl;
    } else {
      L.intercept_s = config.latency_prior.ttft_s;
      L.per_token_s = 1.0 / config.latency_prior.tokens_per_s;
      L.log_sigma = config.latency_prior.log_sigma;
      L.fitted = false;
      L.rows = nl;
    }
    // mean cost
    double sc = 0;
    int nc = 0;
    for (std::size_t q : split_rows) {
      const double c = traces.cost_usd[traces.at(q, m)];
      if (std::isnan(c)) continue;
      sc += c;
      ++nc;
    }
    P.mean_cost_[m] = nc ? sc / nc : 0.0;
  }
  return P;
}

namespace {
// The two rules WorldPredictors and QueryPredictor share (one definition, so the observation's
// predictions block and the router baseline cannot drift apart).
// Predicted output tokens from the ridge model on log1p(tokens), clamped to [1, 1e6].
int predicted_tokens(const RidgeRegression& tokens, const float* x) {
  const double v = std::expm1(tokens.predict(x));
  return static_cast<int>(std::lround(std::min(std::max(v, 1.0), 1e6)));
}
// A call costs list prices x tokens when both prices, a positive output price, the input tokens and a
// token model are known; else the worker's mean training cost.
bool priced_by_tokens(double pin, double pout, int in_tok, bool has_tokens) {
  return !std::isnan(pin) && !std::isnan(pout) && pout > 0 && in_tok >= 0 && has_tokens;
}
double token_cost_usd(double pin, double pout, int in_tok, int out_tok) { return (pin * in_tok + pout * out_tok) / 1e6; }
}  // namespace

int WorldPredictors::output_tokens(std::size_t model, const float* x) const {
  return has_tokens_[model] ? predicted_tokens(tokens_[model], x) : 0;
}

double WorldPredictors::cost_usd(const TraceSet& traces, std::size_t q, std::size_t model, int output_tokens) const {
  const double pin = traces.price_in_per_mtok.empty() ? kMissingD : traces.price_in_per_mtok[model];
  const double pout = traces.price_out_per_mtok.empty() ? kMissingD : traces.price_out_per_mtok[model];
  const int in_tok = q < traces.input_tokens.size() ? traces.input_tokens[q] : -1;
  return priced_by_tokens(pin, pout, in_tok, has_tokens_[model] != 0) ? token_cost_usd(pin, pout, in_tok, output_tokens)
                                                                       : mean_cost_[model];
}

json WorldPredictors::evaluate(const TraceSet& traces, const std::vector<float>& features, int dim,
                               Split split) const {
  const std::size_t M = traces.n_models();
  const std::vector<std::size_t> rows = traces.split_indices(split);
  json workers = json::array();
  for (std::size_t m = 0; m < M; ++m) {
    std::vector<double> p, y;
    std::vector<uint8_t> lab;
    std::vector<std::string> task;
    double tok_ss = 0, tok_st = 0, tok_mean = 0;
    std::vector<std::pair<double, double>> tok;
    for (std::size_t q : rows) {
      const float* x = features.data() + q * dim;
      const float v = traces.quality[traces.at(q, m)];
      if (!std::isnan(v)) {
        p.push_back(quality_prob(m, x));
        y.push_back(v);
        lab.push_back(v >= 0.5f ? 1 : 0);
        task.push_back(traces.query_task[q]);
      }
      const int32_t t = traces.output_tokens.empty() ? -1 : traces.output_tokens[traces.at(q, m)];
      if (t >= 0 && has_tokens_[m]) tok.emplace_back(std::log1p(double(t)), tokens_[m].predict(x));
    }
    for (auto& [a, b] : tok) tok_mean += a;
    if (!tok.empty()) tok_mean /= tok.size();
    for (auto& [a, b] : tok) {
      tok_ss += (a - b) * (a - b);
      tok_st += (a - tok_mean) * (a - tok_mean);
    }
    double base = 0;
    for (double v : y) base += v;
    auto num = [](double v) { return std::isnan(v) ? json(nullptr) : json(v); };
    // AUC within each task: how well the predictor ranks queries beyond the task's base rate.
    json by_task = json::object();
    {
      std::vector<std::string> tasks = task;
      std::sort(tasks.begin(), tasks.end());
      tasks.erase(std::unique(tasks.begin(), tasks.end()), tasks.end());
      for (const std::string& tk : tasks) {
        std::vector<double> pt;
        std::vector<uint8_t> lt;
        for (std::size_t i = 0; i < p.size(); ++i)
          if (task[i] == tk) {
            pt.push_back(p[i]);
            lt.push_back(lab[i]);
          }
        by_task[tk] = json{{"rows", pt.size()}, {"auc", num(roc_auc(pt, lt))}};
      }
    }
    const FittedLatency& L = latency_[m];
    workers.push_back(json{
        {"worker", traces.model_name[m]},
        {"train_rows", train_rows_[m]},
        {"heldout_rows", p.size()},
        {"heldout_mean_quality", y.empty() ? json(nullptr) : json(base / y.size())},
        {"auc", num(roc_auc(p, lab))},
        {"by_task", by_task},
        {"brier", num(brier_score(p, y))},
        {"log_loss", num(log_loss(p, y))},
        {"tokens_r2_log1p", tok.empty() || tok_st <= 0 ? json(nullptr) : json(1.0 - tok_ss / tok_st)},
        {"latency", json{{"fitted", L.fitted}, {"rows", L.rows}, {"intercept_s", L.intercept_s},
                         {"per_token_s", L.per_token_s}, {"log_sigma", L.log_sigma}}},
        {"mean_train_cost_usd", mean_cost_[m]}});
  }
  return json{{"split", split_name(split)}, {"rows", rows.size()}, {"workers", workers}};
}

// ---------------------------------------------------------------------------------------------
// QueryPredictor

QueryPredictor QueryPredictor::from(const WorldPredictors& P, const TraceSet& T, const std::vector<int>& models) {
  QueryPredictor q;
  q.dim_ = -1;
  for (int m : models) {
    CONDUCTOR_CHECK(m >= 0 && static_cast<std::size_t>(m) < P.n_models(), "QueryPredictor: model ", m);
    Worker w;
    w.quality = P.quality_[m];
    w.tokens = P.tokens_[m];
    w.has_tokens = P.has_tokens_[m] != 0;
    w.price_in_per_mtok = T.price_in_per_mtok.empty() ? kMissingD : T.price_in_per_mtok[m];
    w.price_out_per_mtok = T.price_out_per_mtok.empty() ? kMissingD : T.price_out_per_mtok[m];
    w.mean_cost_usd = P.mean_cost_[m];
    if (q.dim_ < 0) q.dim_ = static_cast<int>(w.quality.weights().size());
    if (!w.has_tokens) w.tokens = RidgeRegression::from_coefficients(Eigen::VectorXd::Zero(q.dim_), 0.0);
    q.workers_.push_back(std::move(w));
  }
  if (q.dim_ < 0) q.dim_ = 0;
  return q;
}

int QueryPredictor::output_tokens(int k, const float* x) const {
  const Worker& w = workers_[k];
  return w.has_tokens ? predicted_tokens(w.tokens, x) : 0;
}

double QueryPredictor::cost_usd(int k, const float* x, int input_tokens) const {
  const Worker& w = workers_[k];
  const double pin = w.price_in_per_mtok, pout = w.price_out_per_mtok;
  return priced_by_tokens(pin, pout, input_tokens, w.has_tokens)
             ? token_cost_usd(pin, pout, input_tokens, output_tokens(k, x))
             : w.mean_cost_usd;
}

int QueryPredictor::advice(const float* x, int input_tokens, const uint8_t* pool, const float* price_factor,
                           double w_cost) const {
  int best = -1;
  double best_v = -1e300;
  for (int k = 0; k < n_workers(); ++k) {
    if (!pool[k]) continue;
    const double v = w_quality_ * quality(k, x) - w_cost * (cost_usd(k, x, input_tokens) * price_factor[k]);
    if (v > best_v) {
      best_v = v;
      best = k;
    }
  }
  return best;
}

namespace {
json coefficients(const Eigen::VectorXd& w, double b) {
  return {{"w", std::vector<double>(w.data(), w.data() + w.size())}, {"b", b}};
}
json price_json(double p) { return std::isnan(p) ? json(nullptr) : json(p); }
}  // namespace

json QueryPredictor::to_json() const {
  json ws = json::array();
  for (const Worker& w : workers_)
    ws.push_back({{"quality", coefficients(w.quality.weights(), w.quality.bias())},
                  {"tokens", w.has_tokens ? coefficients(w.tokens.weights(), w.tokens.bias()) : json(nullptr)},
                  {"price_in_per_mtok", price_json(w.price_in_per_mtok)},
                  {"price_out_per_mtok", price_json(w.price_out_per_mtok)},
                  {"mean_cost_usd", w.mean_cost_usd}});
  return {{"dim", dim_}, {"w_quality", w_quality_}, {"w_cost", w_cost_}, {"workers", ws}};
}

QueryPredictor QueryPredictor::from_json(const json& j, int dim, int n_workers, const std::string& source) {
  const std::string at = "world.predictions";
  auto need = [&](const json& o, const char* key, const std::string& where) -> const json& {
    if (!o.is_object() || !o.contains(key)) fail(source, ": ", where, ": missing field '", key, "'");
    return o[key];
  };
  auto finite = [&](const json& v, const std::string& where) {
    if (!v.is_number() || !std::isfinite(v.get<double>())) fail(source, ": ", where, ": expected a finite number, got ", v.dump());
    return v.get<double>();
  };
  auto coef = [&](const json& o, const std::string& where, Eigen::VectorXd* w, double* b) {
    const json& wj = need(o, "w", where);
    if (!wj.is_array() || static_cast<int>(wj.size()) != dim)
      fail(source, ": ", where, ".w: expected an array of ", dim, " numbers (the features' dimension), got ",
           wj.is_array() ? std::to_string(wj.size()) + " entries" : wj.dump());
    w->resize(dim);
    for (int i = 0; i < dim; ++i) (*w)[i] = finite(wj[static_cast<std::size_t>(i)], where + ".w[" + std::to_string(i) + "]");
    *b = finite(need(o, "b", where), where + ".b");
  };
  QueryPredictor q;
  q.dim_ = dim;
  const json& d = need(j, "dim", at);
  if (!d.is_number_integer() || d.get<int>() != dim)
    fail(source, ": ", at, ".dim: expected ", dim, " (the featurizer's dimension), got ", d.dump());
  q.w_quality_ = finite(need(j, "w_quality", at), at + ".w_quality");
  q.w_cost_ = finite(need(j, "w_cost", at), at + ".w_cost");
  if (q.w_quality_ < 0 || q.w_cost_ < 0)
    fail(source, ": ", at, ": expected w_quality >= 0 and w_cost >= 0 (the training reward's weights)");
  const json& ws = need(j, "workers", at);
  if (!ws.is_array() || static_cast<int>(ws.size()) != n_workers)
    fail(source, ": ", at, ".workers: expected an array of ", n_workers, " workers (one per world.workers entry), got ",
         ws.is_array() ? std::to_string(ws.size()) + " entries" : ws.dump());
  for (int k = 0; k < n_workers; ++k) {
    const json& wj = ws[static_cast<std::size_t>(k)];
    const std::string where = at + ".workers[" + std::to_string(k) + "]";
    Worker w;
    Eigen::VectorXd c;
    double b = 0;
    coef(need(wj, "quality", where), where + ".quality", &c, &b);
    w.quality = LogisticRegression::from_coefficients(c, b);
    const json& tj = need(wj, "tokens", where);
    w.has_tokens = !tj.is_null();
    if (w.has_tokens) {
      coef(tj, where + ".tokens", &c, &b);
      w.tokens = RidgeRegression::from_coefficients(c, b);
    } else {
      w.tokens = RidgeRegression::from_coefficients(Eigen::VectorXd::Zero(dim), 0.0);
    }
    auto price = [&](const char* key) {
      const json& v = need(wj, key, where);
      if (v.is_null()) return kMissingD;
      const double p = finite(v, where + "." + key);
      if (p < 0) fail(source, ": ", where, ".", key, ": expected null (unknown) or a number >= 0, got ", v.dump());
      return p;
    };
    w.price_in_per_mtok = price("price_in_per_mtok");
    w.price_out_per_mtok = price("price_out_per_mtok");
    w.mean_cost_usd = finite(need(wj, "mean_cost_usd", where), where + ".mean_cost_usd");
    if (w.mean_cost_usd < 0) fail(source, ": ", where, ".mean_cost_usd: expected a number >= 0, got ", w.mean_cost_usd);
    q.workers_.push_back(std::move(w));
  }
  return q;
}

}  // namespace conductor
