#include "core/stats.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace conductor {

double percentile(std::vector<double> values, double p) {
  if (values.empty()) fail("percentile of an empty list");
  if (!(p >= 0.0 && p <= 100.0)) fail("percentile ", p, " outside [0, 100]");
  std::sort(values.begin(), values.end());
  const double rank = p / 100.0 * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(rank));
  const auto hi = std::min(lo + 1, values.size() - 1);
  const double frac = rank - static_cast<double>(lo);
  return values[lo] + (values[hi] - values[lo]) * frac;
}

}  // namespace conductor
