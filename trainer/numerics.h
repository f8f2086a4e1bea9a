// Pure numerics of the trainer (torch-free), tested against hand-computed values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace conductor {

// Generalized advantage estimation (Schulman et al. 2016) over a rollout of T steps x N envs, all
// arrays [T x N] row-major (step-major), with correct handling of episode ends:
//  - terminated[t][i]: the episode really ended; the next state's value is 0 and nothing flows back.
//  - truncated[t][i]: the episode was cut by a time limit; its last state still has a value, so the
//    step bootstraps with final_values[t][i] = V(final_obs) (the observation the env returned before
//    its auto-reset) and nothing flows back across the reset.
//  - otherwise the step bootstraps with values[t+1][i], or last_values[i] after the last step.
// delta_t = r_t + gamma * V_next - V(s_t); A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1};
// returns = A + values.
struct GaeInput {
  int T = 0, N = 0;
  const float* rewards = nullptr;
  const float* values = nullptr;
  const uint8_t* terminated = nullptr;
  const uint8_t* truncated = nullptr;
  const float* final_values = nullptr;  // read only where truncated
  const float* last_values = nullptr;   // [N]: V(obs after the last step)
  double gamma = 0.99;
  double lambda = 0.95;
};
void compute_gae(const GaeInput& in, float* advantages, float* returns);

// GRPO's group-relative advantages: returns [Q x G] (G rollouts of each of Q queries) become
// (r - mean_group) / (std_group + eps), with the population standard deviation; a group whose
// returns are all equal gets advantage 0.
std::vector<float> group_advantages(const std::vector<float>& returns, int Q, int G, double eps = 1e-8);
// Group-centred returns (r - mean of its group of G) divided by: the group's std ("group", as
// group_advantages), the std of every return of the update ("batch"), or nothing ("none").
std::vector<float> scaled_group_advantages(const std::vector<float>& returns, int Q, int G, const std::string& scale,
                                           double eps = 1e-8);

// 1 - Var[y - y_pred] / Var[y] (population variances); NaN when Var[y] == 0 (as SB3).
double explained_variance(const float* y_pred, const float* y, int64_t n);

// Linear annealing of the learning rate as CleanRL: lr * (1 - (update - 1) / num_updates) for
// update = 1..num_updates.
double annealed_lr(double lr, int64_t update, int64_t num_updates);

}  // namespace conductor
