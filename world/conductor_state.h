// The conductor's state and its vector observation: ONE writer for the environment and for serving.
//
// ConductorEnv (training, replay) and the serving world (a live query and the live results of worker
// calls) both describe the current state of a workflow as a ConductorStateView and turn it into the
// float observation with the same ConductorObsWriter, built from the same ConductorWorldSpec (the
// `world` object of an export manifest). An exported policy therefore sees exactly the floats it was
// trained on, by construction rather than by a test that compares two implementations.
//
// Vector layout (ObsLayout, dim floats):
//   features [F]         the query's features (world/featurizer.h)
//   pool [M]             1 = worker available this episode
//   prices [M]           expected call cost x price factor / cost_scale
//   called [M]           1 = already called this episode
//   history [max_steps x (M + 4)]  per call: one-hot worker, error, log1p(output_tokens)/10,
//                        agreement with earlier answers, latency / latency_scale
//   summary [4]          cum cost / cost_scale, cum latency / latency_scale, steps / max_steps,
//                        majority vote share of the comparable answers
//   preference [0 or 1]  the episode's cost weight as RewardConfig::cost_preference (cost-conditioned)
//   price_change [0 or M] log2(current price / list price) per worker, clipped to [-4, 4]
//                        (world.observe_price_changes; 0 for every worker at list prices)
//   predictions [0 or 3M] (env.observe_predictions; world.predictions) per worker the predicted
//                        probability of a good answer, then per worker the predicted cost of the
//                        query x price factor / cost_scale, then the one-hot of the router's choice
//                        among the pool at the episode's cost weight: the router's inputs and output
//                        (world/predictors.h QueryPredictor)
//   mask [M + R]         the action mask
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/json_util.h"
#include "world/finish_rules.h"
#include "world/featurizer.h"
#include "world/reward.h"

namespace conductor {

class QueryPredictor;  // world/predictors.h

// One CALL as the policy sees it (never the hidden quality).
struct ConductorStepView {
  int worker = -1;
  uint8_t error = 0;          // ErrorCode
  int32_t output_tokens = 0;
  int32_t answer = -1;        // answer id (comparable answers only), -1 otherwise
  float agreement = 0.f;      // share of earlier successful comparable answers equal to this one
  float latency_s = 0.f;
  double cost_usd = 0.0;
};

// The current state of one workflow. Pointers are borrowed from the producer (environment or
// serving episode) and stay valid until its next step/reset/record.
struct ConductorStateView {
  int query = -1;                        // trace query index (-1 for a live query)
  std::string_view text, task;
  int input_tokens = -1;
  const float* features = nullptr;       // [feature_dim] the query's features
  int n_workers = 0;
  const uint8_t* pool = nullptr;         // [n_workers] 1 = available this episode
  const uint8_t* called = nullptr;       // [n_workers] 1 = already called
  const float* price_factor = nullptr;   // [n_workers] current price / list price
  const double* expected_cost_usd = nullptr;  // [n_workers] mean cost of one call at list price
  const ConductorStepView* steps = nullptr;
  int n_steps = 0;                       // calls so far
  int n_answers = 0;                     // successful calls so far
  int max_steps = 0;
  double cum_cost_usd = 0.0, cum_latency_s = 0.0;
  double cost_weight = 0.0;              // the episode's w_cost (varies when cost-conditioned)
  const uint8_t* action_mask = nullptr;  // [n_actions]
};

// The agreement of `next` with the successful comparable answers among steps[0..n): the share of
// them equal to next's answer (0 when next failed, is not comparable, or there are none).
float answer_agreement(const ConductorStepView* steps, int n, const ConductorStepView& next);

// The price_change observation of one worker: log2(price factor) clipped to [-4, 4] (-4 when the
// factor is 0: the call became free).
float price_change_obs(float price_factor);

// What serving (and replay of an export) needs to rebuild the environment's observations and finish
// rules: written into export manifests as `world` (docs/serving.md).
struct ConductorWorldSpec {
  struct Worker {
    std::string name, provider;
    double price_in_per_mtok = 0.0, price_out_per_mtok = 0.0;  // NaN = no public list price (null)
    double expected_cost_usd = 0.0;  // mean cost of one call on the training split
    double trust = 0.0;              // mean training quality (the most_trusted finish rule)
  };
  QueryFeaturizer featurizer;
  std::vector<Worker> workers;
  double cost_scale = 1.0, latency_scale = 1.0;
  int max_steps = 1;
  std::vector<FinishRule> finish_rules;
  FinishRule default_finish = FinishRule::kLast;
  double budget_cap_usd = -1.0;          // < 0: none (training budget.mode was not `cap`)
  // Cost conditioning (reward.w_cost_range): w_cost_min/max/w_cost set; all 0 = a single weight.
  RewardConfig cost_conditioning;
  // env.observe_price_changes: the observation carries log2(price factor) per worker, so a price
  // change is a large input rather than a small shift of the prices segment. Absent in older
  // exports: false.
  bool observe_price_changes = false;
  // env.observe_predictions: the router's per-worker predictions of quality and cost, fitted on the
  // training split, whose outputs the observation carries. Null: not observed (older exports too).
  std::shared_ptr<const QueryPredictor> predictions;

  int n_workers() const { return static_cast<int>(workers.size()); }
  int n_actions() const { return n_workers() + static_cast<int>(finish_rules.size()); }
  std::vector<double> expected_costs() const;
  std::vector<double> trusts() const;
  std::vector<std::string> worker_names() const;
  // "call:<worker>" for each worker, then "finish:<rule>" for each rule.
  std::vector<std::string> action_names() const;

  json to_json() const;
  // Throws conductor::Error naming `source` and the field (world.workers[2].trust, ...).
  static ConductorWorldSpec from_json(const json& j, const std::string& source);
};

// Offsets of the observation segments (floats).
struct ObsLayout {
  int features = 0, features_dim = 0;
  int pool = 0, prices = 0, called = 0;
  int history = 0, history_slot = 0;
  int summary = 0;
  int preference = 0, preference_dim = 0;
  int price_change = 0, price_change_dim = 0;
  int predictions = 0, predictions_dim = 0;
  int mask = 0;
  int dim = 0;
};

class ConductorObsWriter {
 public:
  ConductorObsWriter() = default;
  explicit ConductorObsWriter(const ConductorWorldSpec& spec);

  const ObsLayout& layout() const { return layout_; }
  int dim() const { return layout_.dim; }
  int n_actions() const { return n_actions_; }

  // The whole observation and mask of `s` (write_start, write_call for every call in order, then
  // write_mask). cap_usd < 0: no per-query cost cap.
  void write(const ConductorStateView& s, double cap_usd, float* obs, uint8_t* mask) const;

  // The incremental forms the environment's step loop uses (write() is made of them):
  // start of an episode: features, pool, prices, preference, price changes, predictions; zeros
  // elsewhere (mask not written).
  void write_start(const ConductorStateView& s, float* obs) const;
  // after the call s.steps[s.n_steps - 1]: its called flag, its history slot, the summary.
  void write_call(const ConductorStateView& s, float* obs) const;
  // CALL(k) is allowed when k is in the pool, not yet called and (cap_usd >= 0) cum cost + its
  // expected cost x price factor stays within the cap; FINISH once an answer exists or no call is
  // possible. Writes the mask bytes and the mask segment of obs.
  void write_mask(const ConductorStateView& s, double cap_usd, uint8_t* mask, float* obs) const;
  // The observation at the end of a workflow (the environment's final_obs): steps taken (calls and
  // the finish action) over max_steps, and an all-zero mask segment.
  void write_finished(int steps_taken, float* obs) const;

 private:
  void write_history_slot(const ConductorStateView& s, int j, float* obs) const;
  void write_summary(const ConductorStateView& s, float* obs) const;

  ObsLayout layout_;
  int n_workers_ = 0, n_actions_ = 0, max_steps_ = 1;
  std::vector<double> expected_cost_;
  double cost_scale_ = 1.0, latency_scale_ = 1.0;
  RewardConfig preference_;  // cost-conditioning range
  std::shared_ptr<const QueryPredictor> predictions_;
};

}  // namespace conductor
