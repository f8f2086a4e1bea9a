#include "eval/ope.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/random.h"
#include "eval/metrics.h"

namespace conductor::eval {

const std::vector<std::string>& ope_estimator_names() {
  static const std::vector<std::string> names = {"dm", "ips", "snips", "dr", "sndr", "switch-dr"};
  return names;
}

const OpeEstimate& OpeResult::get(const std::string& name) const {
  for (const auto& e : estimates)
    if (e.estimator == name) return e;
  fail("no OPE estimate named '", name, "'");
}

void validate_bandit_data(const BanditData& d, const std::string& what) {
  const std::size_t n = d.size();
  if (n == 0) fail(what, ": no logged decisions");
  if (d.n_actions <= 0) fail(what, ": the target policy has no actions");
  const auto A = static_cast<std::size_t>(d.n_actions);
  if (d.propensity.size() != n) fail(what, ": /decisions/propensity is missing (", d.propensity.size(), " values for ", n, " decisions): off-policy estimators need the logging policy's propensities");
  CONDUCTOR_CHECK(d.reward.size() == n && d.target_prob.size() == n * A && d.reward_hat.size() == n * A);
  for (std::size_t i = 0; i < n; ++i) {
    const double p = d.propensity[i];
    if (std::isnan(p)) fail(what, ": /decisions/propensity[", i, "] is missing (NaN): off-policy estimators need the logging propensity of every decision");
    if (!(p > 0.0)) fail(what, ": /decisions/propensity[", i, "] = ", p, ": a propensity must be in (0, 1]; a zero propensity means the logged action could not have been taken");
    if (p > 1.0 + 1e-9) fail(what, ": /decisions/propensity[", i, "] = ", p, " is above 1");
    if (d.action[i] < 0 || d.action[i] >= d.n_actions)
      fail(what, ": /decisions/action[", i, "] = ", d.action[i], " is outside the policy's action space [0, ", d.n_actions, ")");
    if (!std::isfinite(d.reward[i])) fail(what, ": the reward of decision ", i, " is missing (quality or cost not logged)");
    double s = 0.0;
    for (std::size_t a = 0; a < A; ++a) {
      const double pi = d.target_prob[i * A + a];
      if (!(pi >= 0.0)) fail(what, ": target policy probability of action ", a, " at decision ", i, " is ", pi);
      s += pi;
    }
    if (std::fabs(s - 1.0) > 1e-6) fail(what, ": target policy probabilities at decision ", i, " sum to ", s, ", not 1");
  }
}

namespace {

// Per-row quantities every estimator is a function of.
struct Rows {
  std::vector<double> dm, w, r, resid;  // resid = r - q(x, a)
};

// Point estimates over the rows listed by `idx` (or all rows when idx is null).
struct Sums {
  double n = 0, dm = 0, ips = 0, wr = 0, w = 0, dr = 0, wres = 0, sw = 0;
};

std::vector<double> point(const Rows& rows, const OpeOptions& o, const std::vector<uint32_t>* idx) {
  Sums s;
  const std::size_t n = idx ? idx->size() : rows.w.size();
  for (std::size_t j = 0; j < n; ++j) {
    const std::size_t i = idx ? (*idx)[j] : j;
    const double w = rows.w[i];
    s.dm += rows.dm[i];
    s.ips += std::min(w, o.ips_clip) * rows.r[i];
    s.wr += w * rows.r[i];
    s.w += w;
    s.wres += w * rows.resid[i];
    s.sw += w <= o.switch_tau ? w * rows.resid[i] : 0.0;
  }
  const double N = static_cast<double>(n);
  const double dm = s.dm / N;
  const double snips = s.w > 0 ? s.wr / s.w : 0.0;
  const double sndr = dm + (s.w > 0 ? s.wres / s.w : 0.0);
  return {dm, s.ips / N, snips, dm + s.wres / N, sndr, dm + s.sw / N};
}

// Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9).
double normal_quantile(double p) {
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                             1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549671010243726e+00, 4.374664141464968e+00, 2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  const double lo = 0.02425;
  if (p < lo) {
    const double q = std::sqrt(-2 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - lo) return -normal_quantile(1 - p);
  const double q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

double stddev_of_mean(const std::vector<double>& v) {
  const double n = static_cast<double>(v.size());
  double m = 0;
  for (double x : v) m += x;
  m /= n;
  double ss = 0;
  for (double x : v) ss += (x - m) * (x - m);
  return n > 1 ? std::sqrt(ss / (n - 1) / n) : 0.0;
}

}  // namespace

OpeResult estimate_policy_value(const BanditData& d, const OpeOptions& o, const std::string& what) {
  validate_bandit_data(d, what);
  if (!(o.confidence > 0 && o.confidence < 1)) fail("OPE confidence level ", o.confidence, " outside (0, 1)");
  if (o.ci == CiMethod::kBootstrap && o.bootstrap_samples < 10)
    fail("OPE bootstrap needs at least 10 samples, got ", o.bootstrap_samples);
  if (!(o.ips_clip > 0)) fail("IPS clip must be > 0, got ", o.ips_clip);
  const std::size_t n = d.size();
  const auto A = static_cast<std::size_t>(d.n_actions);
  Rows rows;
  rows.dm.resize(n);
  rows.w.resize(n);
  rows.r = d.reward;
  rows.resid.resize(n);
  double sw = 0, sw2 = 0, wmax = 0;
  for (std::size_t i = 0; i < n; ++i) {
    double dm = 0;
    for (std::size_t a = 0; a < A; ++a) dm += d.target_prob[i * A + a] * d.reward_hat[i * A + a];
    rows.dm[i] = dm;
    const std::size_t la = i * A + static_cast<std::size_t>(d.action[i]);
    rows.w[i] = d.target_prob[la] / d.propensity[i];
    rows.resid[i] = d.reward[i] - d.reward_hat[la];
    sw += rows.w[i];
    sw2 += rows.w[i] * rows.w[i];
    wmax = std::max(wmax, rows.w[i]);
  }
  OpeResult res;
  res.n = n;
  res.effective_sample_size = sw2 > 0 ? sw * sw / sw2 : 0.0;
  res.max_weight = wmax;
  res.mean_weight = sw / static_cast<double>(n);
  const auto values = point(rows, o, nullptr);
  const auto& names = ope_estimator_names();
  const double alpha = 1.0 - o.confidence;
  std::vector<double> lo(values.size()), hi(values.size());
  if (o.ci == CiMethod::kBootstrap) {
    Rng rng(o.seed);
    std::vector<std::vector<double>> draws(values.size());
    std::vector<uint32_t> idx(n);
    for (int b = 0; b < o.bootstrap_samples; ++b) {
      for (auto& i : idx) i = static_cast<uint32_t>(rng.below(n));
      const auto v = point(rows, o, &idx);
      for (std::size_t e = 0; e < v.size(); ++e) draws[e].push_back(v[e]);
    }
    for (std::size_t e = 0; e < values.size(); ++e) {
      lo[e] = percentile(draws[e], 100.0 * alpha / 2);
      hi[e] = percentile(draws[e], 100.0 * (1 - alpha / 2));
    }
  } else {
    // Influence functions; the self-normalized estimators by the delta method.
    const double mean_w = sw / static_cast<double>(n);
    const double snips = values[2];
    const double dm_mean = values[0];
    double b = 0;
    for (std::size_t i = 0; i < n; ++i) b += rows.w[i] * rows.resid[i];
    b = sw > 0 ? b / sw : 0.0;
    std::vector<std::vector<double>> infl(values.size(), std::vector<double>(n));
    for (std::size_t i = 0; i < n; ++i) {
      const double w = rows.w[i];
      infl[0][i] = rows.dm[i];
      infl[1][i] = std::min(w, o.ips_clip) * rows.r[i];
      infl[2][i] = mean_w > 0 ? w * (rows.r[i] - snips) / mean_w : 0.0;
      infl[3][i] = rows.dm[i] + w * rows.resid[i];
      infl[4][i] = rows.dm[i] - dm_mean + (mean_w > 0 ? w * (rows.resid[i] - b) / mean_w : 0.0);
      infl[5][i] = rows.dm[i] + (w <= o.switch_tau ? w * rows.resid[i] : 0.0);
    }
    const double z = normal_quantile(1 - alpha / 2);
    for (std::size_t e = 0; e < values.size(); ++e) {
      const double se = stddev_of_mean(infl[e]);
      lo[e] = values[e] - z * se;
      hi[e] = values[e] + z * se;
    }
  }
  for (std::size_t e = 0; e < values.size(); ++e) res.estimates.push_back({names[e], values[e], lo[e], hi[e]});
  return res;
}

}  // namespace conductor::eval
