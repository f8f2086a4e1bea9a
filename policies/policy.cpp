// Torch-free helpers of the inference policy interface.
#include "policies/policy.h"

#include <cmath>

#include "core/error.h"

namespace conductor {

void check_obs_fits(const ObsNeeds& needs, int n_actions, const std::string& policy_name, const ObsBatch& obs,
                    const std::string& source_name) {
  if (n_actions != obs.n_actions)
    fail(policy_name, " has ", n_actions, " actions, but ", source_name, " has ", obs.n_actions,
         ": the worker list or the finish rules differ");
  if (needs.dense_dim > 0 && (!obs.dense || obs.dense_dim != needs.dense_dim))
    fail(policy_name, " reads observations of ", needs.dense_dim, " floats, but ", source_name, " gives ",
         obs.dense ? std::to_string(obs.dense_dim) + " floats" : std::string("no vector observation"),
         ": the worker list or the feature configuration differs");
  if (needs.states && !obs.states)
    fail(policy_name, " reads the conductor's state (query text, pool, calls), but ", source_name,
         " has no such state: token policies need env.id conductor");
}

void check_obs_fits(const Policy& policy, const std::string& policy_name, const ObsBatch& obs,
                    const std::string& source_name) {
  check_obs_fits(policy.needs(), policy.n_actions(), policy_name, obs, source_name);
}

int sample_masked(const float* probs, const uint8_t* mask, int n_actions, double u) {
  double total = 0.0;
  for (int a = 0; a < n_actions; ++a)
    if (mask[a] && probs[a] > 0.f) total += probs[a];
  CONDUCTOR_CHECK(total > 0.0, "no allowed action has positive probability");
  const double target = u * total;
  double acc = 0.0;
  int last = -1;
  for (int a = 0; a < n_actions; ++a) {
    if (!mask[a] || !(probs[a] > 0.f)) continue;
    acc += probs[a];
    last = a;
    if (target < acc) return a;
  }
  return last;  // rounding at the top end
}

int choose_action(const float* logits, const uint8_t* m, int A, bool greedy, double u, float* p) {
  float mx = -INFINITY;
  for (int a = 0; a < A; ++a)
    if (m[a]) mx = std::max(mx, logits[a]);
  if (mx == -INFINITY) fail("no action is allowed by the mask");
  double z = 0.0;
  for (int a = 0; a < A; ++a) z += m[a] ? std::exp(static_cast<double>(logits[a] - mx)) : 0.0;
  int best = -1;
  for (int a = 0; a < A; ++a) {
    p[a] = m[a] ? static_cast<float>(std::exp(static_cast<double>(logits[a] - mx)) / z) : 0.f;
    if (m[a] && (best < 0 || logits[a] > logits[best])) best = a;
  }
  return greedy ? best : sample_masked(p, m, A, u);
}

}  // namespace conductor
