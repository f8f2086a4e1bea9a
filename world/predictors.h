// Predictors of call outcomes fitted on traces (the *model* part of the reward models), and the
// held-out metrics they report.
//
//  - quality: per worker, L2-regularized logistic regression on the query featurizer's output, fitted
//    by Newton's method (IRLS) with Eigen; targets are the logged qualities in [0, 1] (cross-entropy,
//    so fractional qualities are allowed). The bias is not regularized.
//  - output tokens: per worker, ridge regression of log1p(output_tokens) on the same features.
//  - latency: per worker, latency_s = a + b * output_tokens by least squares on the logged calls,
//    with log-normal multiplicative noise (sigma of the log residual ratio). A worker with fewer than
//    `min_latency_rows` logged latencies uses the latency prior (documented, configurable).
//  - cost: prices x tokens when the worker has a positive output price, else the mean logged cost of
//    the worker on the training split.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <string>
#include <vector>

#include "core/json_util.h"
#include "core/random.h"
#include "world/featurizer.h"
#include "traces/trace_set.h"

namespace conductor {

// Area under the ROC curve of `score` for binary `label` (Mann-Whitney U with average ranks for
// ties). NaN when one class is absent.
double roc_auc(const std::vector<double>& score, const std::vector<uint8_t>& label);
// Mean of (p - y)^2.
double brier_score(const std::vector<double>& p, const std::vector<double>& y);
// Mean binary cross-entropy, p clipped to [1e-12, 1 - 1e-12].
double log_loss(const std::vector<double>& p, const std::vector<double>& y);

class LogisticRegression {
 public:
  // X: n x d, y in [0,1]. l2 >= 0 on the weights (not the bias).
  void fit(const Eigen::MatrixXd& X, const Eigen::VectorXd& y, double l2, int max_iter = 30,
           double tol = 1e-9);
  double predict(const float* x) const;  // x has d entries
  double predict(const Eigen::VectorXd& x) const;
  const Eigen::VectorXd& weights() const { return w_; }
  double bias() const { return b_; }
  int iterations() const { return iterations_; }
  // A fitted model from its coefficients (an export's world.predictions).
  static LogisticRegression from_coefficients(Eigen::VectorXd w, double b);

 private:
  Eigen::VectorXd w_;
  double b_ = 0.0;
  int iterations_ = 0;
};

class RidgeRegression {
 public:
  void fit(const Eigen::MatrixXd& X, const Eigen::VectorXd& y, double l2);
  double predict(const float* x) const;
  double predict(const Eigen::VectorXd& x) const;
  const Eigen::VectorXd& weights() const { return w_; }
  double bias() const { return b_; }
  static RidgeRegression from_coefficients(Eigen::VectorXd w, double b);

 private:
  Eigen::VectorXd w_;
  double b_ = 0.0;
};

struct FittedLatencyPrior {
  double ttft_s = 0.5;          // seconds before the first token
  double tokens_per_s = 50.0;   // decoding throughput
  double log_sigma = 0.25;      // log-normal noise
};

struct FittedLatency {
  bool fitted = false;          // false = the prior is used
  double intercept_s = 0.0;
  double per_token_s = 0.0;
  double log_sigma = 0.0;
  int rows = 0;
  double mean(int output_tokens) const;
  double sample(int output_tokens, Rng& rng) const;
};

struct PredictorConfig {
  double quality_l2 = 1.0;
  double tokens_l2 = 1.0;
  int min_latency_rows = 10;
  FittedLatencyPrior latency_prior;
  static PredictorConfig parse(ConfigReader r);
};

// The fitted predictors of every worker of one trace set.
class QueryPredictor;

class WorldPredictors {
 public:
  // Fits on the queries of `train_split` (features: [n_queries x featurizer.dim()] of all queries).
  static WorldPredictors fit(const TraceSet& traces, const std::vector<float>& features, int dim,
                             Split train_split, const PredictorConfig& config);

  double quality_prob(std::size_t model, const float* x) const { return quality_[model].predict(x); }
  int output_tokens(std::size_t model, const float* x) const;
  const FittedLatency& latency(std::size_t model) const { return latency_[model]; }
  double cost_usd(const TraceSet& traces, std::size_t q, std::size_t model, int output_tokens) const;
  // The cost of query q (features x) on `model` at its predicted output tokens: what a router expects to pay.
  double predicted_cost_usd(const TraceSet& traces, std::size_t q, std::size_t model, const float* x) const {
    return cost_usd(traces, q, model, output_tokens(model, x));
  }
  // True when every logged training quality of the worker is exactly 0 or 1.
  bool binary_quality(std::size_t model) const { return binary_[model] != 0; }
  std::size_t n_models() const { return quality_.size(); }

  // Held-out report on `split`: per worker AUC (quality >= 0.5 as positive), Brier, log loss, base
  // rate, rows; output-token R^2 on log1p; latency model parameters.
  json evaluate(const TraceSet& traces, const std::vector<float>& features, int dim, Split split) const;

 private:
  friend class QueryPredictor;
  std::vector<LogisticRegression> quality_;
  std::vector<RidgeRegression> tokens_;
  std::vector<uint8_t> has_tokens_;
  std::vector<double> mean_tokens_;
  std::vector<FittedLatency> latency_;
  std::vector<double> mean_cost_;
  std::vector<uint8_t> binary_;
  std::vector<int> train_rows_;
};

// What a router knows of each worker of a world before calling it: the predicted probability of a
// good answer and the predicted cost of the query, from the query's features and input tokens. It is
// WorldPredictors restricted to the world's workers (env.workers order) with their prices, and gives
// exactly WorldPredictors::quality_prob and predicted_cost_usd for the same features and tokens; it
// travels in an export (world.predictions) so that serving computes the observation's predictions
// block (env.observe_predictions) as training did.
class QueryPredictor {
 public:
  struct Worker {
    LogisticRegression quality;
    RidgeRegression tokens;               // log1p(output tokens); unused when !has_tokens
    bool has_tokens = false;
    double price_in_per_mtok = 0.0, price_out_per_mtok = 0.0;  // NaN: no list price
    double mean_cost_usd = 0.0;           // the cost when prices or tokens are unknown
  };

  // `models[k]` is the trace model of world worker k.
  static QueryPredictor from(const WorldPredictors& predictors, const TraceSet& traces, const std::vector<int>& models);

  int n_workers() const { return static_cast<int>(workers_.size()); }
  int dim() const { return dim_; }
  // x: dim() features of the query.
  double quality(int k, const float* x) const { return workers_[k].quality.predict(x); }
  int output_tokens(int k, const float* x) const;
  // input_tokens < 0: unknown (the worker's mean training cost is used).
  double cost_usd(int k, const float* x, int input_tokens) const;

  // The reward weights of the router's rule in the observation's advice (w_quality x quality -
  // w_cost x cost): the training run's; a cost-conditioned world uses each episode's w_cost instead.
  double w_quality() const { return w_quality_; }
  double w_cost() const { return w_cost_; }
  void set_reward(double w_quality, double w_cost) {
    w_quality_ = w_quality;
    w_cost_ = w_cost;
  }
  // The router's choice among workers with pool[k] != 0: the highest w_quality x quality(k) -
  // w_cost x cost_usd(k) x price_factor[k] (ties: the lowest k); -1 when the pool is empty.
  int advice(const float* x, int input_tokens, const uint8_t* pool, const float* price_factor, double w_cost) const;

  json to_json() const;
  // Throws conductor::Error naming `source` and the field (world.predictions.workers[1].quality.w ...);
  // `dim` and `n_workers` are the features' and the world's.
  static QueryPredictor from_json(const json& j, int dim, int n_workers, const std::string& source);

 private:
  std::vector<Worker> workers_;
  int dim_ = 0;
  double w_quality_ = 1.0, w_cost_ = 0.0;
};

}  // namespace conductor
