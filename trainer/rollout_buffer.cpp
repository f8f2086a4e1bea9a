#include "trainer/rollout_buffer.h"

#include "core/error.h"

namespace conductor {

void RolloutBuffer::clear() {
  obs.clear();
  masks.clear();
  actions.clear();
  log_probs.clear();
  values.clear();
  rewards.clear();
  terminated.clear();
  truncated.clear();
  final_values.clear();
  advantages.clear();
  returns.clear();
  episode_returns.clear();
  owner.clear();
}

void RolloutBuffer::add_step_row(const ObsBatch& b, int i, int64_t action, float log_prob) {
  CONDUCTOR_CHECK(b.n_actions == n_actions, "rollout buffer for ", n_actions, " actions fed ", b.n_actions);
  const uint8_t* m = b.mask + static_cast<std::size_t>(i) * n_actions;
  masks.insert(masks.end(), m, m + n_actions);
  actions.push_back(action);
  log_probs.push_back(log_prob);
}

void RolloutBuffer::compute_gae(int T, int N, const std::vector<float>& last_values, double gamma, double lambda) {
  const int64_t B = int64_t(T) * N;
  CONDUCTOR_CHECK(size() == B && static_cast<int64_t>(rewards.size()) == B && static_cast<int64_t>(values.size()) == B,
                  "compute_gae over ", size(), " rows for T ", T, " x N ", N);
  advantages.assign(B, 0.f);
  returns.assign(B, 0.f);
  GaeInput gi;
  gi.T = T;
  gi.N = N;
  gi.rewards = rewards.data();
  gi.values = values.data();
  gi.terminated = terminated.data();
  gi.truncated = truncated.data();
  gi.final_values = final_values.data();
  gi.last_values = last_values.data();
  gi.gamma = gamma;
  gi.lambda = lambda;
  conductor::compute_gae(gi, advantages.data(), returns.data());
}

torch::Tensor mask_to_tensor(const uint8_t* mask, int64_t n, int64_t a) {
  return torch::from_blob(const_cast<uint8_t*>(mask), {n, a}, torch::kUInt8).to(torch::kBool);
}

torch::Tensor RolloutBuffer::mask_tensor() const { return mask_to_tensor(masks.data(), size(), n_actions); }
torch::Tensor RolloutBuffer::action_tensor() const {
  return torch::from_blob(const_cast<int64_t*>(actions.data()), {size()}, torch::kInt64);
}
torch::Tensor RolloutBuffer::log_prob_tensor() const {
  return torch::from_blob(const_cast<float*>(log_probs.data()), {size()}, torch::kFloat32);
}
torch::Tensor RolloutBuffer::advantage_tensor() const {
  return torch::from_blob(const_cast<float*>(advantages.data()), {size()}, torch::kFloat32);
}
torch::Tensor RolloutBuffer::return_tensor() const {
  return torch::from_blob(const_cast<float*>(returns.data()), {size()}, torch::kFloat32);
}
torch::Tensor RolloutBuffer::value_tensor() const {
  return torch::from_blob(const_cast<float*>(values.data()), {size()}, torch::kFloat32);
}

}  // namespace conductor
