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
  static FaultSpec parse(ConfigReader r);
};

// The per-call and per-episode effects of the faults on one sub-environment.
struct FaultEffects {
  // per worker, for the current episode
  std::vector<uint8_t> down;              // calls fail (unannounced outage)
  std::vector<uint8_t> announced_down;    // removed from the pool
  std::vector<float> down_latency_s;
  std::vector<float> timeout_prob;
  std::vector<float> timeout_latency_s;
  std::vector<float> spike_prob;          // per-call spike probability (1 inside a spike window)
  std::vector<float> spike_factor;
  std::vector<float> price_factor;
  int task_mix = -1;                      // index into FaultModel::task_mixes(), -1 = none
  std::vector<int64_t> window_until;      // [n_window_faults x n_workers] end of the current window
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
  void init(FaultEffects& fx) const;
  // Advances the windows to `episode` and recomputes the per-episode effects.
  void begin_episode(int64_t episode, Rng& rng, FaultEffects& fx) const;
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

}  // namespace conductor
