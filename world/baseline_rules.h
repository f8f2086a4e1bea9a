// The two rules a conductor can express that ship as baselines, over a full-information
// ReplayTable and per-query predictions; `conductor eval` sweeps them (eval/baselines.h) and the
// conductor environment offers them as experts to imitate (bc_warmstart.expert / bc.expert router
// and cascade, envs/conductor_env.h).
//
//  - router (RouteLLM style, arXiv 2406.18665, generalised from 2 to M workers): calls the single
//    worker maximising  predicted_quality - cost_weight * predicted_cost; sweeping cost_weight
//    traces its frontier. Quality predictions come from a per-worker logistic regression on query
//    features fitted on train (world/predictors.h).
//  - cascade (FrugalGPT style, arXiv 2305.05176): calls the workers of a chain from cheap to
//    expensive and stops at the first answer whose confidence score reaches the threshold. The chain
//    is the training-set Pareto front of single workers (each one costlier and better than the one
//    before). The score of the first answer is its predicted quality; for later answers it is a
//    logistic model fitted on train per chain position over [predicted quality, agreement with an
//    earlier answer of the chain, answers comparable] (agreement is what a gateway can observe; for
//    free-text answers such as code it is unavailable and only the predicted quality counts).
//    Sweeping the threshold traces its frontier.
#pragma once

#include <cstdint>
#include <vector>

#include "world/predictors.h"
#include "world/replay_table.h"

namespace conductor::eval {

// Per-query predictions aligned with an ReplayTable: [n_queries x n_workers].
struct Predictions {
  std::vector<double> quality;
  std::vector<double> cost_usd;
};
// Predicted quality and cost of every worker on every query of `table`. `features` holds
// [traces.n_queries() x dim] features of every trace query; table worker k is trace model
// models[k] (the predictors are indexed by trace model).
Predictions predict(const ReplayTable& table, const TraceSet& traces, const WorldPredictors& predictors,
                    const std::vector<float>& features, int dim, const std::vector<int>& models);

// One call of worker m on row r of the table: its logged quality, cost and latency.
QueryResult single_call(const ReplayTable& table, std::size_t row, int m);

std::vector<QueryResult> run_router(const ReplayTable& table, const Predictions& pred, double cost_weight);

// Index of the lowest mean cost / highest mean quality (ties: lowest index).
int argmin(const std::vector<double>& v);
int argmax(const std::vector<double>& v);

// Cheap-to-expensive chain of workers that are on the (mean cost, mean quality) Pareto front.
std::vector<int> pareto_chain(const std::vector<double>& mean_quality, const std::vector<double>& mean_cost);

class Cascade {
 public:
  // Fits the per-position answer scorers on the training table and its predictions.
  static Cascade fit(const ReplayTable& train, const Predictions& train_pred, std::vector<int> chain);
  std::vector<QueryResult> run(const ReplayTable& table, const Predictions& pred, double threshold) const;
  // The threshold of cascade_thresholds() with the highest mean utility at `cost_weight` on `train`
  // (ties: the lowest): what `conductor eval` tunes the cascade baseline with, and the
  // environment's cascade expert.
  double best_threshold(const ReplayTable& train, const Predictions& train_pred, double cost_weight) const;
  // Confidence score of the answer at chain position k: its predicted quality at k = 0, else the
  // position's scorer over [predicted quality, agrees with an earlier answer, answers comparable].
  // The cascade stops when it reaches the threshold.
  double score(std::size_t k, double predicted_quality, bool agrees, bool comparable) const;
  const std::vector<int>& chain() const { return chain_; }

 private:
  std::vector<int> chain_;
  std::vector<LogisticRegression> scorers_;  // position k >= 1 (index k - 1)
};

// The cascade at every threshold of cascade_thresholds() on a training table, replayed once and kept
// as mean quality and cost per threshold: tuning the threshold for a cost weight is then 42 products
// (the environment's cascade expert asks at every decision; cost-conditioned runs draw a weight per
// episode). Same choice as Cascade::best_threshold up to the rounding of a mean of differences.
class CascadeSweep {
 public:
  CascadeSweep(const Cascade& cascade, const ReplayTable& train, const Predictions& train_pred);
  // The threshold with the highest mean quality - cost_weight x mean cost (ties: the lowest).
  double best_threshold(double cost_weight) const;

 private:
  std::vector<double> thresholds_, quality_, cost_usd_;  // per threshold
};

// Grids swept to trace frontiers (documented in docs/evaluation.md).
std::vector<double> router_cost_weights();
std::vector<double> cascade_thresholds();

// Mean of quality - cost_weight * cost over results: the reward a baseline is tuned for.
double mean_utility(const std::vector<QueryResult>& results, double cost_weight);

}  // namespace conductor::eval
