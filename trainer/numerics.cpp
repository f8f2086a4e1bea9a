#include "trainer/numerics.h"

#include <cmath>
#include <limits>

#include "core/error.h"

namespace conductor {

void compute_gae(const GaeInput& in, float* advantages, float* returns) {
  CONDUCTOR_CHECK(in.T > 0 && in.N > 0, "empty rollout");
  const int T = in.T, N = in.N;
  for (int i = 0; i < N; ++i) {
    double next_adv = 0.0;
    for (int t = T - 1; t >= 0; --t) {
      const int k = t * N + i;
      double next_value;
      bool cut;  // no advantage flows back from t+1
      if (in.terminated[k]) {
        next_value = 0.0;
        cut = true;
      } else if (in.truncated[k]) {
        next_value = in.final_values[k];
        cut = true;
      } else {
        next_value = (t == T - 1) ? in.last_values[i] : in.values[(t + 1) * N + i];
        cut = false;
      }
      const double delta = in.rewards[k] + in.gamma * next_value - in.values[k];
      const double adv = delta + (cut ? 0.0 : in.gamma * in.lambda * next_adv);
      advantages[k] = static_cast<float>(adv);
      returns[k] = static_cast<float>(adv + in.values[k]);
      next_adv = adv;
    }
  }
}

std::vector<float> group_advantages(const std::vector<float>& returns, int Q, int G, double eps) {
  CONDUCTOR_CHECK(static_cast<int64_t>(returns.size()) == static_cast<int64_t>(Q) * G, "shape");
  std::vector<float> adv(returns.size(), 0.f);
  for (int q = 0; q < Q; ++q) {
    double mean = 0.0;
    for (int g = 0; g < G; ++g) mean += returns[q * G + g];
    mean /= G;
    double var = 0.0;
    for (int g = 0; g < G; ++g) var += (returns[q * G + g] - mean) * (returns[q * G + g] - mean);
    const double sd = std::sqrt(var / G);
    for (int g = 0; g < G; ++g)
      adv[q * G + g] = sd > 0.0 ? static_cast<float>((returns[q * G + g] - mean) / (sd + eps)) : 0.f;
  }
  return adv;
}

std::vector<float> scaled_group_advantages(const std::vector<float>& returns, int Q, int G, const std::string& scale,
                                           double eps) {
  if (scale == "group") return group_advantages(returns, Q, G, eps);
  CONDUCTOR_CHECK(scale == "batch" || scale == "none", "unknown advantage scaling '", scale, "'");
  CONDUCTOR_CHECK(static_cast<int64_t>(returns.size()) == static_cast<int64_t>(Q) * G, "shape");
  std::vector<float> adv(returns.size(), 0.f);
  double sd = 1.0;
  if (scale == "batch") {
    double mean = 0.0, var = 0.0;
    for (float r : returns) mean += r;
    mean /= static_cast<double>(returns.size());
    for (float r : returns) var += (r - mean) * (r - mean);
    sd = std::sqrt(var / static_cast<double>(returns.size())) + eps;
  }
  for (int q = 0; q < Q; ++q) {
    double mean = 0.0;
    for (int g = 0; g < G; ++g) mean += returns[q * G + g];
    mean /= G;
    for (int g = 0; g < G; ++g) adv[q * G + g] = static_cast<float>((returns[q * G + g] - mean) / sd);
  }
  return adv;
}

double explained_variance(const float* y_pred, const float* y, int64_t n) {
  if (n <= 0) return std::numeric_limits<double>::quiet_NaN();
  double my = 0.0, md = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    my += y[i];
    md += y[i] - y_pred[i];
  }
  my /= n;
  md /= n;
  double vy = 0.0, vd = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    vy += (y[i] - my) * (y[i] - my);
    const double d = y[i] - y_pred[i] - md;
    vd += d * d;
  }
  if (vy == 0.0) return std::numeric_limits<double>::quiet_NaN();
  return 1.0 - vd / vy;
}

double annealed_lr(double lr, int64_t update, int64_t num_updates) {
  if (num_updates <= 0) return lr;
  const double frac = 1.0 - static_cast<double>(update - 1) / static_cast<double>(num_updates);
  return frac * lr;
}

}  // namespace conductor
