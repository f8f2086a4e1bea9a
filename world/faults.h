// Seeded fault injection for the conductor environment (DESIGN.md section 4).
//
// Time is counted in episodes of each sub-environment: episode e of sub-environment i is the e-th
// query it serves (0-based). Every draw comes from that sub-environment's Rng, so faults are
// deterministic per seed.
//
// YAML (`env.faults`, a list; `worker` is a worker name or `all`):
//   - {type: outage, worker: W, start: 100, duration: 50}        scheduled: episodes [100, 150)
//   - {type: outage, worker: W, rate: 0.01, duration: 20}        random: each episode outside an outage
//                                                                starts one with probability `rate`
//     options: timeout_s (default 30): latency of a call to the worker while it is down;
//              announced (default false): true = the gateway knows (the worker is removed from the
//              pool mask and masked); false = a call fails with error timeout after timeout_s, costs
//              nothing, and the conductor may re-route.
//   - {type: timeout, worker: W, prob: 0.05, timeout_s: 30}      each call fails (timeout) with prob
//   - {type: latency_spike, worker: W, factor: 4, rate|start, duration}  latency x factor in windows
//     (or {prob: p, factor: f} per call without a window)
//   - {type: price_change, worker: W, factor: 2, at_episode: 500} cost x factor from that episode on
//                                                                (the observed prices follow)
//   - {type: price_change, worker: W, factor: 3, rate|start, duration}  cost x factor in windows
//     (random or scheduled, as outages: training for price changes the policy must notice)
//   - {type: price_noise, worker: W, log2_sd: 1, prob: 0.5}     each episode, with probability prob,
//     the worker's price is multiplied by 2^N(0, log2_sd^2) (domain randomization of prices: the policy
//     sees prices move in most episodes instead of in rare windows, and learns to weigh them)
//   - {type: task_mix, at_episode: 1000, weights: {mbpp: 3, arc-challenge: 1}}  sample mode draws a
//     task by weight, then a query of that task uniformly (tasks not listed get weight 0)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/random.h"

namespace conductor {

namespace eval {
struct ReplayTable;  // world/replay_table.h
}

enum class FaultKind { kOutage, kTimeout, kLatencySpike, kPriceChange, kPriceNoise, kTaskMix };

struct FaultSpec {
  FaultKind kind = FaultKind::kOutage;
  std::string worker = "all";             // a worker name or "all"
  std::string worker_where;               // "file:line: key ..." for errors found after loading
  int64_t start = -1;                     // scheduled window start (episode), -1 = random windows
  int64_t duration = 0;                   // window length in episodes
  double rate = 0.0;                      // random windows: start probability per episode
  double prob = 0.0;                      // timeout / per-call latency spike probability
  double timeout_s = 30.0;                // latency of a failed call
  double factor = 1.0;                    // latency or price factor
  double log2_sd = 0.0;                   // price_noise: sd of log2(price factor)
  bool announced = false;                 // outage visible in the pool mask
  int64_t at_episode = 0;                 // price_change, task_mix
  std::vector<std::pair<std::string, double>> task_weights;  // task_mix
  std::string where;                      // "file:line: key 'env.faults[i]'"

  bool windowed() const {
    return kind == FaultKind::kOutage || (kind == FaultKind::kLatencySpike && prob == 0.0) ||
           (kind == FaultKind::kPriceChange && duration > 0);
  }
  // True when its effect is drawn (random windows, timeouts, per-call latency spikes, price noise).
  bool draws() const {
    return (windowed() && start < 0) || kind == FaultKind::kTimeout || kind == FaultKind::kPriceNoise ||
           (kind == FaultKind::kLatencySpike && prob > 0.0);
  }
  static FaultSpec parse(ConfigReader r);
};

// What the faults do to one call, the one rule the environment (each call it serves) and eval's
// `--scenario` (each cell of a full-information table, apply_faults below) apply. Real is float in
// the environment and double in eval's tables: each keeps its own arithmetic.
template <typename Real>
struct CallFault {
  bool fails = false;        // an outage or a timeout: the call returns an error
  Real fail_latency_s = 0;   // ... after this long
  Real latency_factor = 1;   // otherwise: latency x factor (a latency spike)
  Real price_factor = 1;     //            cost x factor (a price change or price noise)

  // Rewrites one call's outcome; returns true when the call fails (then quality 0, no cost, no
  // answer, fail_latency_s). The caller records the failure in its own form (error code, flag).
  bool apply(Real& quality, double& cost_usd, Real& latency_s, int32_t& answer) const {
    if (fails) {
      quality = Real(0);
      cost_usd = 0.0;
      latency_s = fail_latency_s;
      answer = -1;
      return true;
    }
    latency_s *= latency_factor;
    cost_usd *= price_factor;
    return false;
  }
};

// The per-call and per-episode effects of the faults on one sub-environment (Real as in CallFault).
template <typename Real>
struct FaultEffects {
  // per worker, for the current episode
  std::vector<uint8_t> down;              // calls fail (unannounced outage)
  std::vector<uint8_t> announced_down;    // removed from the pool (a call would fail as well)
  std::vector<Real> down_latency_s;
  std::vector<Real> timeout_prob;
  std::vector<Real> timeout_latency_s;
  std::vector<Real> spike_prob;           // per-call spike probability (1 inside a spike window)
  std::vector<Real> spike_factor;
  std::vector<Real> price_factor;
  int task_mix = -1;                      // index into FaultModel::task_mixes(), -1 = none
  std::vector<int64_t> window_until;      // [n_window_faults x n_workers] end of the current window

  // The effect on one call to worker k in the current episode. A down worker fails without a
  // draw; otherwise the call's timeout and then its latency spike are drawn from `rng`, each only
  // where its probability is above 0 (a spike probability of 1 draws nothing).
  CallFault<Real> call(int k, Rng& rng) const;
};

// Immutable, resolved fault list shared by all sub-environments.
class FaultModel {
 public:
  FaultModel() = default;
  // Resolves worker and task names; throws conductor::Error naming the config position.
  FaultModel(const std::vector<FaultSpec>& specs, const std::vector<std::string>& workers,
             const std::vector<std::string>& tasks);

  bool empty() const { return specs_.empty(); }
  int n_workers() const { return n_workers_; }
  // Sizes and clears `fx` (FaultEffects<float> and <double> are instantiated).
  template <typename Real>
  void init(FaultEffects<Real>& fx) const;
  // Advances the windows to `episode` and recomputes the per-episode effects.
  template <typename Real>
  void begin_episode(int64_t episode, Rng& rng, FaultEffects<Real>& fx) const;
  // Task weights of each task_mix fault (indexed by task id of the constructor's `tasks`).
  const std::vector<std::vector<double>>& task_mixes() const { return task_mixes_; }

 private:
  struct Resolved {
    FaultSpec spec;
    std::vector<int> workers;
    int window = -1;  // index of its window block
    int mix = -1;
  };
  std::vector<Resolved> specs_;
  std::vector<std::vector<double>> task_mixes_;
  int n_workers_ = 0;
  int n_windows_ = 0;
};

// Faults that hold for a whole split on its full-information table (eval's `--scenario` on the
// baselines): every cell of a faulted worker becomes what a call in episode 0 returns under
// `faults` (FaultModel::begin_episode, FaultEffects::call, CallFault::apply, in double), and a
// failed call is marked in `table.failed`. Throws naming the fault for one that draws or is a
// task mix (a table holds one outcome per call and no sampling) and for a worker the table lacks.
void apply_faults(const std::vector<FaultSpec>& faults, eval::ReplayTable& table);

}  // namespace conductor
