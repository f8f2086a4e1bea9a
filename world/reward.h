// Composite reward of one finished workflow, and budget mode.
//
//   reward = w_quality * quality(final answer)
//          - (w_cost + lambda) * total_cost_usd
//          - w_latency * total_latency_s
//          - no_answer_penalty   (when the workflow ends without any successful answer)
//
// lambda is 0 unless budget.mode is `lagrange`: then it is a Lagrange multiplier on the mean cost
// per query that the trainer adapts between updates to hit budget.target_mean_cost_usd, by a PI
// controller on the relative gap e = (mean_cost - target) / target of each update's episodes (the
// PID Lagrangian of Stooke, Achiam and Abbeel 2020, without the derivative term):
//     I      <- max(0, I + e)                      (projected: no wind-up below zero)
//     lambda <- clamp(lambda_lr * I + lambda_kp * e, 0, lambda_max)
// with I starting at lambda_init / lambda_lr (lambda_lr = 0: lambda = lambda_init + lambda_kp * e).
// With lambda_kp = 0 this is plain dual ascent, lambda <- clamp(lambda + lambda_lr * e, 0, max).
// With budget.mode `cap`, a worker whose expected call cost would take the query's cumulative cost
// above cap_usd is masked (the environment applies it).
//
// Cost conditioning (`w_cost_range: [lo, hi]`, 0 < lo < hi): each episode draws its own w_cost,
// log-uniform in [lo, hi], and the policy observes it (ConductorEnv's `preference` segment), so one
// policy serves every cost weight of the range; `w_cost` stays the default (evaluation headline,
// serving requests without a cost weight) and must lie in the range.
#pragma once

#include <cstdint>
#include <string>

#include "core/config.h"

namespace conductor {

enum class BudgetMode { kNone, kCap, kLagrange };

struct BudgetConfig {
  BudgetMode mode = BudgetMode::kNone;
  double cap_usd = 0.0;                 // mode cap: per-query cost cap (> 0)
  double target_mean_cost_usd = 0.0;    // mode lagrange: target mean cost per query (> 0)
  double lambda_init = 0.0;             // initial multiplier (reward units per USD)
  double lambda_lr = 1.0;               // integral gain: dual step size on the relative cost gap
  double lambda_kp = 0.0;               // proportional gain on the relative cost gap
  double lambda_max = 1e6;
  static BudgetConfig parse(ConfigReader r);
};

struct RewardConfig {
  double w_quality = 1.0;
  double w_cost = 0.0;           // per USD
  double w_latency = 0.0;        // per second
  double no_answer_penalty = 1.0;
  double w_cost_min = 0.0, w_cost_max = 0.0;  // `w_cost_range`; both 0 = not cost-conditioned
  BudgetConfig budget;
  static RewardConfig parse(ConfigReader r);

  bool cost_conditioned() const { return w_cost_max > 0; }
  // The observed preference of a cost weight in [w_cost_min, w_cost_max]: its log-position in
  // the range, mapped to [-1, 1].
  double cost_preference(double w) const;

  double compute(double quality, double cost_usd, double latency_s, bool answered, double lambda) const {
    return compute_with(w_cost, quality, cost_usd, latency_s, answered, lambda);
  }
  double compute_with(double w_cost_episode, double quality, double cost_usd, double latency_s, bool answered,
                      double lambda) const {
    double r = w_quality * quality - (w_cost_episode + lambda) * cost_usd - w_latency * latency_s;
    if (!answered) r -= no_answer_penalty;
    return r;
  }
};

// The cost multiplier's controller (above). The environment reports each finished episode's cost
// with observe(); the trainer calls update() between policy updates (or update_with(mean) with a
// mean it computed itself, e.g. over several processes). Deterministic: no randomness, state is
// (lambda, sum, count) and the integral.
class BudgetController {
 public:
  BudgetController() = default;
  explicit BudgetController(const BudgetConfig& config)
      : config_(config),
        lambda_(config.lambda_init),
        integral_(config.lambda_lr > 0 ? config.lambda_init / config.lambda_lr : 0.0) {}

  bool adaptive() const { return config_.mode == BudgetMode::kLagrange; }
  double lambda() const { return adaptive() ? lambda_ : 0.0; }
  void observe(double cost_usd) {
    sum_cost_ += cost_usd;
    ++count_;
  }
  // Mean cost observed since the last update (NaN if none).
  double observed_mean() const;
  // Applies one dual step with the mean observed since the last update and clears the window.
  // Returns the new lambda. No-op (returns lambda()) when not adaptive or nothing was observed.
  double update();
  double update_with(double mean_cost_usd);
  void set_lambda(double lambda) { lambda_ = lambda; }
  // The controller's integral of relative gaps (part of the exact state, with state()).
  double integral() const { return integral_; }
  void set_integral(double i) { integral_ = i; }
  // Exact state for checkpoints.
  struct State {
    double lambda = 0.0, sum_cost = 0.0;
    long long count = 0;
  };
  State state() const { return {lambda_, sum_cost_, count_}; }
  void set_state(const State& s) {
    lambda_ = s.lambda;
    sum_cost_ = s.sum_cost;
    count_ = s.count;
  }
  const BudgetConfig& config() const { return config_; }

 private:
  BudgetConfig config_;
  double lambda_ = 0.0;
  double integral_ = 0.0;
  double sum_cost_ = 0.0;
  long long count_ = 0;
};

}  // namespace conductor
