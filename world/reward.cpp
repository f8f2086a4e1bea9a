#include "world/reward.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

namespace conductor {

BudgetConfig BudgetConfig::parse(ConfigReader r) {
  BudgetConfig c;
  const std::string mode = r.get_choice("mode", "none", {"none", "cap", "lagrange"});
  c.mode = mode == "cap" ? BudgetMode::kCap : mode == "lagrange" ? BudgetMode::kLagrange : BudgetMode::kNone;
  if (c.mode == BudgetMode::kCap) {
    c.cap_usd = r.required<double>("cap_usd");
    if (!(c.cap_usd > 0)) r.fail_at("cap_usd", "expected a positive cost cap in USD");
  }
  if (c.mode == BudgetMode::kLagrange) {
    c.target_mean_cost_usd = r.required<double>("target_mean_cost_usd");
    if (!(c.target_mean_cost_usd > 0)) r.fail_at("target_mean_cost_usd", "expected a positive target mean cost in USD");
    c.lambda_init = r.get_in<double>("lambda_init", c.lambda_init, 0.0, 1e12);
    c.lambda_lr = r.get_in<double>("lambda_lr", c.lambda_lr, 0.0, 1e12);
    c.lambda_kp = r.get_in<double>("lambda_kp", c.lambda_kp, 0.0, 1e12);
    c.lambda_max = r.get_in<double>("lambda_max", c.lambda_max, 0.0, 1e15);
  }
  r.finish();
  return c;
}

RewardConfig RewardConfig::parse(ConfigReader r) {
  RewardConfig c;
  auto weight = [&](const char* key, double def) {
    const double v = r.get<double>(key, def);
    if (!(v >= 0) || !std::isfinite(v)) r.fail_at(key, "expected a finite non-negative weight");
    return v;
  };
  c.w_quality = weight("w_quality", c.w_quality);
  c.w_cost = weight("w_cost", c.w_cost);
  c.w_latency = weight("w_latency", c.w_latency);
  c.no_answer_penalty = weight("no_answer_penalty", c.no_answer_penalty);
  // Read only when present: a default written into every resolved config.yaml would make runs
  // started before this key existed refuse to resume ("started from a different config").
  const auto range = r.has("w_cost_range") ? r.get<std::vector<double>>("w_cost_range", {}) : std::vector<double>{};
  if (!range.empty()) {
    if (range.size() != 2 || !(range[0] > 0) || !(range[1] > range[0]) || !std::isfinite(range[1]))
      r.fail_at("w_cost_range", "expected [lo, hi] with 0 < lo < hi (cost weights per USD)");
    c.w_cost_min = range[0];
    c.w_cost_max = range[1];
    if (!(c.w_cost >= c.w_cost_min && c.w_cost <= c.w_cost_max))
    {
      std::ostringstream os;
      os << "w_cost " << c.w_cost << " (the default cost weight) must lie in w_cost_range [" << range[0] << ", "
         << range[1] << "]";
      r.fail_at("w_cost", os.str());
    }
  }
  c.budget = BudgetConfig::parse(r.child("budget"));
  r.finish();
  return c;
}

double RewardConfig::cost_preference(double w) const {
  if (!cost_conditioned()) return 0.0;
  const double lo = std::log(w_cost_min), hi = std::log(w_cost_max);
  return 2.0 * (std::log(w) - lo) / (hi - lo) - 1.0;
}

double BudgetController::observed_mean() const {
  return count_ ? sum_cost_ / static_cast<double>(count_) : std::nan("");
}

double BudgetController::update() {
  if (!adaptive() || count_ == 0) return lambda();
  const double mean = observed_mean();
  sum_cost_ = 0;
  count_ = 0;
  return update_with(mean);
}

double BudgetController::update_with(double mean_cost_usd) {
  if (!adaptive()) return lambda();
  const double gap = (mean_cost_usd - config_.target_mean_cost_usd) / config_.target_mean_cost_usd;
  integral_ = std::max(0.0, integral_ + gap);
  const double base = config_.lambda_lr > 0 ? config_.lambda_lr * integral_ : config_.lambda_init;
  const double raw = base + config_.lambda_kp * gap;
  lambda_ = std::min(config_.lambda_max, std::max(0.0, raw));
  return lambda_;
}

}  // namespace conductor
