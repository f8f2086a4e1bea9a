#include "world/faults.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "world/replay_table.h"

namespace conductor {

FaultSpec FaultSpec::parse(ConfigReader r) {
  FaultSpec f;
  f.where = r.where("type");
  if (!r.has("type"))
    r.fail_at("type", "required key is missing (expected one of outage, timeout, latency_spike, price_change, price_noise, task_mix)");
  const std::string type =
      r.get_choice("type", "outage", {"outage", "timeout", "latency_spike", "price_change", "price_noise", "task_mix"});
  auto positive = [&](const char* key, double def) {
    const double v = r.get<double>(key, def);
    if (!(v > 0)) r.fail_at(key, "expected a positive number");
    return v;
  };
  auto probability = [&](const char* key) { return r.required_in<double>(key, 0.0, 1.0); };
  auto window = [&]() {
    f.duration = r.required_in<int64_t>("duration", 1, int64_t(1) << 50);
    if (r.has("start") == r.has("rate"))
      r.fail_at("start", "a windowed fault needs exactly one of 'start' (scheduled) or 'rate' (random)");
    if (r.has("start")) f.start = r.required_in<int64_t>("start", 0, int64_t(1) << 50);
    if (r.has("rate")) f.rate = probability("rate");
  };
  if (type != "task_mix") {
    f.worker = r.required<std::string>("worker");
    f.worker_where = r.where("worker");
  }
  if (type == "outage") {
    f.kind = FaultKind::kOutage;
    window();
    f.timeout_s = positive("timeout_s", 30.0);
    f.announced = r.get<bool>("announced", false);
  } else if (type == "timeout") {
    f.kind = FaultKind::kTimeout;
    f.prob = probability("prob");
    f.timeout_s = positive("timeout_s", 30.0);
  } else if (type == "latency_spike") {
    f.kind = FaultKind::kLatencySpike;
    f.factor = positive("factor", 1.0);
    if (r.has("prob")) {
      f.prob = probability("prob");
      if (f.prob == 0.0) r.fail_at("prob", "expected a probability > 0");
    } else {
      window();
    }
  } else if (type == "price_change") {
    f.kind = FaultKind::kPriceChange;
    f.factor = r.required<double>("factor");
    if (!(f.factor >= 0)) r.fail_at("factor", "expected a non-negative price factor");
    if (r.has("rate") || r.has("start")) {  // price windows (random or scheduled)
      if (r.has("at_episode")) r.fail_at("at_episode", "a price window takes 'rate' or 'start' with 'duration', not 'at_episode'");
      window();
    } else {
      f.at_episode = r.get_in<int64_t>("at_episode", 0, 0, int64_t(1) << 50);
    }
  } else if (type == "price_noise") {
    f.kind = FaultKind::kPriceNoise;
    f.log2_sd = r.required_in<double>("log2_sd", 0.0, 4.0);
    if (!(f.log2_sd > 0)) r.fail_at("log2_sd", "expected a standard deviation in (0, 4] (of log2 of the price factor)");
    f.prob = r.has("prob") ? probability("prob") : 1.0;
  } else {
    f.kind = FaultKind::kTaskMix;
    f.at_episode = r.get_in<int64_t>("at_episode", 0, 0, int64_t(1) << 50);
    const std::vector<std::string> tasks = r.keys_of("weights");
    ConfigReader w = r.child("weights");
    if (tasks.empty()) r.fail_at("weights", "expected a mapping of task name to weight");
    for (const std::string& t : tasks) {
      const double v = w.required<double>(t);
      if (!(v >= 0)) w.fail_at(t, "expected a non-negative weight");
      f.task_weights.emplace_back(t, v);
    }
    w.finish();
    f.worker_where = r.where("weights");
  }
  r.finish();
  return f;
}

FaultModel::FaultModel(const std::vector<FaultSpec>& specs, const std::vector<std::string>& workers,
                       const std::vector<std::string>& tasks)
    : n_workers_(static_cast<int>(workers.size())) {
  for (const FaultSpec& s : specs) {
    Resolved r;
    r.spec = s;
    if (s.kind != FaultKind::kTaskMix) {
      if (s.worker == "all") {
        for (int k = 0; k < n_workers_; ++k) r.workers.push_back(k);
      } else {
        auto it = std::find(workers.begin(), workers.end(), s.worker);
        if (it == workers.end()) {
          std::string known;
          for (const auto& w : workers) known += (known.empty() ? "" : ", ") + w;
          fail(s.worker_where, ": unknown worker '", s.worker, "' (workers of this environment: ", known, ", or all)");
        }
        r.workers.push_back(static_cast<int>(it - workers.begin()));
      }
    } else {
      std::vector<double> w(tasks.size(), 0.0);
      double total = 0;
      for (const auto& [task, weight] : s.task_weights) {
        auto it = std::find(tasks.begin(), tasks.end(), task);
        if (it == tasks.end()) {
          std::string known;
          for (const auto& t : tasks) known += (known.empty() ? "" : ", ") + t;
          fail(s.worker_where, ": unknown task '", task, "' (tasks of the split: ", known, ")");
        }
        w[it - tasks.begin()] = weight;
        total += weight;
      }
      if (!(total > 0)) fail(s.worker_where, ": task weights must have a positive sum");
      r.mix = static_cast<int>(task_mixes_.size());
      task_mixes_.push_back(w);
    }
    if (s.windowed()) r.window = n_windows_++;
    specs_.push_back(std::move(r));
  }
}

template <typename Real>
void FaultModel::init(FaultEffects<Real>& fx) const {
  const int M = n_workers_;
  fx.down.assign(M, 0);
  fx.announced_down.assign(M, 0);
  fx.down_latency_s.assign(M, Real(0));
  fx.timeout_prob.assign(M, Real(0));
  fx.timeout_latency_s.assign(M, Real(0));
  fx.spike_prob.assign(M, Real(0));
  fx.spike_factor.assign(M, Real(1));
  fx.price_factor.assign(M, Real(1));
  fx.task_mix = -1;
  fx.window_until.assign(static_cast<std::size_t>(n_windows_) * M, -1);
}

template <typename Real>
void FaultModel::begin_episode(int64_t episode, Rng& rng, FaultEffects<Real>& fx) const {
  const int M = n_workers_;
  std::fill(fx.down.begin(), fx.down.end(), 0);
  std::fill(fx.announced_down.begin(), fx.announced_down.end(), 0);
  std::fill(fx.timeout_prob.begin(), fx.timeout_prob.end(), Real(0));
  std::fill(fx.spike_prob.begin(), fx.spike_prob.end(), Real(0));
  std::fill(fx.spike_factor.begin(), fx.spike_factor.end(), Real(1));
  std::fill(fx.price_factor.begin(), fx.price_factor.end(), Real(1));
  fx.task_mix = -1;
  int64_t mix_at = -1;
  for (const Resolved& r : specs_) {
    const FaultSpec& s = r.spec;
    for (int k : r.workers) {
      bool active = false;
      if (r.window >= 0) {
        int64_t& until = fx.window_until[static_cast<std::size_t>(r.window) * M + k];
        if (s.start >= 0) {
          active = episode >= s.start && episode < s.start + s.duration;
        } else {
          if (episode >= until && rng.bernoulli(s.rate)) until = episode + s.duration;
          active = episode < until;
        }
      }
      switch (s.kind) {
        case FaultKind::kOutage:
          if (active) {
            (s.announced ? fx.announced_down : fx.down)[k] = 1;
            fx.down_latency_s[k] = static_cast<Real>(s.timeout_s);
          }
          break;
        case FaultKind::kTimeout: {
          // Independent timeout sources combine: P(no timeout) multiplies.
          const Real p = fx.timeout_prob[k];
          fx.timeout_prob[k] = static_cast<Real>(1.0 - (1.0 - p) * (1.0 - s.prob));
          fx.timeout_latency_s[k] = std::max(fx.timeout_latency_s[k], static_cast<Real>(s.timeout_s));
          break;
        }
        case FaultKind::kLatencySpike:
          if (r.window < 0) {
            fx.spike_prob[k] = static_cast<Real>(s.prob);
            fx.spike_factor[k] *= static_cast<Real>(s.factor);
          } else if (active) {
            fx.spike_prob[k] = Real(1);
            fx.spike_factor[k] *= static_cast<Real>(s.factor);
          }
          break;
        case FaultKind::kPriceChange:
          if (r.window >= 0 ? active : episode >= s.at_episode) fx.price_factor[k] *= static_cast<Real>(s.factor);
          break;
        case FaultKind::kPriceNoise:
          if (rng.bernoulli(s.prob)) fx.price_factor[k] *= static_cast<Real>(std::exp2(s.log2_sd * rng.normal()));
          break;
        case FaultKind::kTaskMix:
          break;
      }
    }
    if (s.kind == FaultKind::kTaskMix && episode >= s.at_episode && s.at_episode >= mix_at) {
      fx.task_mix = r.mix;
      mix_at = s.at_episode;
    }
  }
}

template <typename Real>
CallFault<Real> FaultEffects<Real>::call(int k, Rng& rng) const {
  CallFault<Real> f;
  if (down[k] || announced_down[k]) {  // an announced worker is masked: the environment never calls it
    f.fails = true;
    f.fail_latency_s = down_latency_s[k];
    return f;
  }
  if (timeout_prob[k] > 0 && rng.bernoulli(timeout_prob[k])) {
    f.fails = true;
    f.fail_latency_s = timeout_latency_s[k];
    return f;
  }
  if (spike_prob[k] > 0 && (spike_prob[k] >= Real(1) || rng.bernoulli(spike_prob[k]))) f.latency_factor = spike_factor[k];
  f.price_factor = price_factor[k];
  return f;
}

void apply_faults(const std::vector<FaultSpec>& faults, eval::ReplayTable& table) {
  for (const FaultSpec& f : faults) {
    if (f.kind == FaultKind::kTaskMix)
      fail(f.where, ": a task mix does not apply to a full-information table (it changes which queries are sampled)");
    if (f.draws())
      fail(f.where, ": a fault that draws (random window, timeout, per-call latency spike, price noise) does not "
                    "apply to a full-information table, which holds one outcome per call");
  }
  const FaultModel model(faults, table.workers, {});
  FaultEffects<double> fx;
  model.init(fx);
  Rng rng;  // nothing is drawn (checked above)
  model.begin_episode(0, rng, fx);
  for (std::size_t m = 0; m < table.n_workers(); ++m) {
    const CallFault<double> f = fx.call(static_cast<int>(m), rng);
    for (std::size_t row = 0; row < table.n_queries(); ++row) {
      const std::size_t cell = table.at(row, m);
      if (f.apply(table.quality[cell], table.cost_usd[cell], table.latency_s[cell], table.answer[cell]))
        table.failed[cell] = 1;
    }
  }
}

template struct FaultEffects<float>;
template struct FaultEffects<double>;
template void FaultModel::init(FaultEffects<float>&) const;
template void FaultModel::init(FaultEffects<double>&) const;
template void FaultModel::begin_episode(int64_t, Rng&, FaultEffects<float>&) const;
template void FaultModel::begin_episode(int64_t, Rng&, FaultEffects<double>&) const;

}  // namespace conductor
