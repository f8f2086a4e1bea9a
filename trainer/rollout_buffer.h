// What an algorithm's collect_rollouts() gathers and its train() consumes: observation rows in the
// policy's own encoding with their masks, the actions taken and their behaviour log-probabilities,
// and per-row targets (PPO: values, rewards, episode ends, then GAE advantages and returns; GRPO:
// group-relative advantages; BC: the expert's actions). Row-major; for PPO row t * N + i is step t of
// sub-environment i.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "policies/policy_model.h"
#include "trainer/numerics.h"

namespace conductor {

struct RolloutBuffer {
  int n_actions = 0;
  EncodedObs obs;
  std::vector<uint8_t> masks;        // [rows x n_actions]
  std::vector<int64_t> actions;      // [rows]
  std::vector<float> log_probs;      // [rows] under the behaviour policy
  std::vector<float> values;         // [rows] PPO
  std::vector<float> rewards;        // [rows] PPO
  std::vector<uint8_t> terminated, truncated;  // [rows] PPO (truncated: and not terminated)
  std::vector<float> final_values;   // [rows] PPO: V(final obs) where truncated
  std::vector<float> advantages;     // [rows]
  std::vector<float> returns;        // [rows] PPO: advantages + values
  // GRPO: episode returns [Q x G] and the episode each row belongs to (q * G + g).
  std::vector<float> episode_returns;
  std::vector<int64_t> owner;

  int64_t size() const { return static_cast<int64_t>(actions.size()); }
  void clear();

  // Appends row i of a step: its mask (from the batch), action and log-probability.
  void add_step_row(const ObsBatch& obs, int i, int64_t action, float log_prob);

  // GAE over T steps of N sub-environments (rows t * N + i), filling advantages and returns.
  void compute_gae(int T, int N, const std::vector<float>& last_values, double gamma, double lambda);

  // Views of the buffer as tensors (no copies; valid while the buffer is unchanged).
  torch::Tensor mask_tensor() const;      // bool [rows x n_actions]
  torch::Tensor action_tensor() const;    // int64 [rows]
  torch::Tensor log_prob_tensor() const;  // f32 [rows]
  torch::Tensor advantage_tensor() const;
  torch::Tensor return_tensor() const;
  torch::Tensor value_tensor() const;
};

// A row-major [n x a] uint8 mask as a bool tensor (a copy).
torch::Tensor mask_to_tensor(const uint8_t* mask, int64_t n, int64_t a);

}  // namespace conductor
