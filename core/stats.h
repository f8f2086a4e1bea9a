// Small statistics shared by every library.
#pragma once

#include <vector>

namespace conductor {

// The p-th percentile (p in [0, 100]) with linear interpolation between the closest ranks
// (numpy's default): rank = p/100 * (n - 1). Throws conductor::Error for an empty list or p outside
// [0, 100].
double percentile(std::vector<double> values, double p);

}  // namespace conductor
