#include "world/baseline_rules.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace conductor::eval {

QueryResult single_call(const ReplayTable& t, std::size_t r, int m) {
  const std::size_t k = t.at(r, m);
  return QueryResult{t.quality[k], t.cost_usd[k], t.latency_s[k], {m}};
}

Predictions predict(const ReplayTable& table, const TraceSet& traces, const WorldPredictors& predictors,
                    const std::vector<float>& features, int dim, const std::vector<int>& models) {
  CONDUCTOR_CHECK(models.size() == table.n_workers() && predictors.n_models() == traces.n_models());
  CONDUCTOR_CHECK(features.size() == traces.n_queries() * static_cast<std::size_t>(dim));
  Predictions p;
  p.quality.resize(table.n_queries() * table.n_workers());
  p.cost_usd.resize(p.quality.size());
  for (std::size_t r = 0; r < table.n_queries(); ++r) {
    const std::size_t q = table.query_index[r];
    const float* x = features.data() + q * dim;
    for (std::size_t k = 0; k < table.n_workers(); ++k) {
      const auto m = static_cast<std::size_t>(models[k]);
      p.quality[table.at(r, k)] = predictors.quality_prob(m, x);
      p.cost_usd[table.at(r, k)] = predictors.predicted_cost_usd(traces, q, m, x);
    }
  }
  return p;
}

std::vector<QueryResult> run_router(const ReplayTable& table, const Predictions& pred, double cost_weight) {
  CONDUCTOR_CHECK(pred.quality.size() == table.quality.size());
  std::vector<QueryResult> out;
  out.reserve(table.n_queries());
  for (std::size_t r = 0; r < table.n_queries(); ++r) {
    int best = 0;
    double best_u = -1e300;
    for (std::size_t m = 0; m < table.n_workers(); ++m) {
      const double u = pred.quality[table.at(r, m)] - cost_weight * pred.cost_usd[table.at(r, m)];
      if (u > best_u) {
        best_u = u;
        best = static_cast<int>(m);
      }
    }
    out.push_back(single_call(table, r, best));
  }
  return out;
}

int argmin(const std::vector<double>& v) {
  CONDUCTOR_CHECK(!v.empty());
  return static_cast<int>(std::min_element(v.begin(), v.end()) - v.begin());
}
int argmax(const std::vector<double>& v) {
  CONDUCTOR_CHECK(!v.empty());
  return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

std::vector<int> pareto_chain(const std::vector<double>& mean_quality, const std::vector<double>& mean_cost) {
  CONDUCTOR_CHECK(mean_quality.size() == mean_cost.size() && !mean_cost.empty());
  std::vector<int> order(mean_cost.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return mean_cost[a] < mean_cost[b] || (mean_cost[a] == mean_cost[b] && mean_quality[a] > mean_quality[b]);
  });
  std::vector<int> chain;
  for (int m : order)
    if (chain.empty() || mean_quality[m] > mean_quality[chain.back()]) chain.push_back(m);
  return chain;
}

namespace {
// Features of the answer at chain position k >= 1 (see the header).
struct AnswerSignal {
  bool agrees = false;
  bool comparable = false;
};
AnswerSignal answer_signal(const ReplayTable& t, std::size_t r, const std::vector<int>& chain, std::size_t k) {
  AnswerSignal s;
  const int32_t a = t.answer[t.at(r, chain[k])];
  if (a < 0) return s;
  for (std::size_t j = 0; j < k; ++j) {
    const int32_t b = t.answer[t.at(r, chain[j])];
    if (b < 0) continue;
    s.comparable = true;
    if (a == b) s.agrees = true;
  }
  return s;
}
}  // namespace

Cascade Cascade::fit(const ReplayTable& train, const Predictions& pred, std::vector<int> chain) {
  if (chain.empty()) fail("cascade: the chain of workers is empty");
  Cascade c;
  c.chain_ = std::move(chain);
  const auto n = static_cast<Eigen::Index>(train.n_queries());
  for (std::size_t k = 1; k < c.chain_.size(); ++k) {
    Eigen::MatrixXd X(n, 3);
    Eigen::VectorXd y(n);
    for (std::size_t r = 0; r < train.n_queries(); ++r) {
      const auto s = answer_signal(train, r, c.chain_, k);
      const std::size_t cell = train.at(r, c.chain_[k]);
      X(r, 0) = pred.quality[cell];
      X(r, 1) = s.agrees ? 1.0 : 0.0;
      X(r, 2) = s.comparable ? 1.0 : 0.0;
      y(r) = train.quality[cell];
    }
    LogisticRegression lr;
    lr.fit(X, y, /*l2=*/1e-3);
    c.scorers_.push_back(std::move(lr));
  }
  return c;
}

double Cascade::score(std::size_t k, double predicted_quality, bool agrees, bool comparable) const {
  if (k == 0) return predicted_quality;
  Eigen::VectorXd x(3);
  x << predicted_quality, agrees ? 1.0 : 0.0, comparable ? 1.0 : 0.0;
  return scorers_[k - 1].predict(x);
}

std::vector<QueryResult> Cascade::run(const ReplayTable& table, const Predictions& pred, double threshold) const {
  std::vector<QueryResult> out;
  out.reserve(table.n_queries());
  for (std::size_t r = 0; r < table.n_queries(); ++r) {
    QueryResult res;
    double answer_quality = 0.0;  // no answer at all scores 0
    for (std::size_t k = 0; k < chain_.size(); ++k) {
      const int m = chain_[k];
      const std::size_t cell = table.at(r, m);
      res.calls.push_back(m);
      res.cost_usd += table.cost_usd[cell];
      res.latency_s += table.latency_s[cell];
      if (table.failed[cell]) continue;  // no answer: escalate
      answer_quality = table.quality[cell];
      const auto s = answer_signal(table, r, chain_, k);
      if (k + 1 == chain_.size() || score(k, pred.quality[cell], s.agrees, s.comparable) >= threshold) break;
    }
    res.quality = answer_quality;
    out.push_back(std::move(res));
  }
  return out;
}

double Cascade::best_threshold(const ReplayTable& train, const Predictions& train_pred, double cost_weight) const {
  double best_t = 0, best_u = -1e300;
  for (double t : cascade_thresholds()) {
    const double u = mean_utility(run(train, train_pred, t), cost_weight);
    if (u > best_u + 1e-12) {
      best_u = u;
      best_t = t;
    }
  }
  return best_t;
}

CascadeSweep::CascadeSweep(const Cascade& cascade, const ReplayTable& train, const Predictions& train_pred)
    : thresholds_(cascade_thresholds()) {
  for (double t : thresholds_) {
    const auto results = cascade.run(train, train_pred, t);
    CONDUCTOR_CHECK(!results.empty());
    double q = 0, c = 0;
    for (const auto& r : results) {
      q += r.quality;
      c += r.cost_usd;
    }
    quality_.push_back(q / static_cast<double>(results.size()));
    cost_usd_.push_back(c / static_cast<double>(results.size()));
  }
}

double CascadeSweep::best_threshold(double cost_weight) const {
  double best_t = 0, best_u = -1e300;
  for (std::size_t i = 0; i < thresholds_.size(); ++i) {
    const double u = quality_[i] - cost_weight * cost_usd_[i];
    if (u > best_u + 1e-12) {
      best_u = u;
      best_t = thresholds_[i];
    }
  }
  return best_t;
}

std::vector<double> router_cost_weights() {
  // 0 (quality only), then 10^0 .. 10^5 per USD in 30 log steps: at RouterBench prices
  // (1e-4 .. 5e-3 USD per call) this spans "ignore cost" to "always the cheapest".
  std::vector<double> w{0.0};
  for (int i = 0; i <= 30; ++i) w.push_back(std::pow(10.0, 5.0 * i / 30.0));
  return w;
}

std::vector<double> cascade_thresholds() {
  std::vector<double> t;
  for (int i = 0; i <= 40; ++i) t.push_back(i / 40.0);
  t.push_back(1.01);  // never confident enough: always the whole chain
  return t;
}

double mean_utility(const std::vector<QueryResult>& results, double cost_weight) {
  CONDUCTOR_CHECK(!results.empty());
  double u = 0.0;
  for (const auto& r : results) u += r.quality - cost_weight * r.cost_usd;
  return u / static_cast<double>(results.size());
}

}  // namespace conductor::eval
