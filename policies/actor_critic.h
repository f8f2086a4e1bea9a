// MLP actor-critic in LibTorch (training side). Eval and serving use the torch-free mlp_io.h.
//
// Separate actor and critic trunks as in CleanRL's ppo.py, with its orthogonal initialization:
// hidden layers gain sqrt(2), the policy head gain 0.01 (near-uniform initial policy), the value
// head gain 1.0; biases 0. Initialization draws from torch's global generator: seed it with
// torch::manual_seed before constructing for reproducible weights.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "policies/mlp_io.h"

namespace conductor {

class ActorCriticImpl : public torch::nn::Module {
 public:
  explicit ActorCriticImpl(const MlpSpec& spec);
  // Unmasked logits [B x n_actions].
  torch::Tensor logits(const torch::Tensor& obs);
  // State values [B].
  torch::Tensor value(const torch::Tensor& obs);
  const MlpSpec& spec() const { return spec_; }

  torch::nn::Sequential actor{nullptr};
  torch::nn::Sequential critic{nullptr};

 private:
  MlpSpec spec_;
};
TORCH_MODULE(ActorCritic);

// ---- Masked categorical distribution (masks: bool [B x A], true = allowed) ----
// Masked actions get logit -inf, so their probability is exactly 0 and their log-probability -inf.
torch::Tensor masked_log_probs(const torch::Tensor& logits, const torch::Tensor& mask);
// Entropy of each row from masked log-probabilities (masked entries contribute 0, not NaN).
torch::Tensor masked_entropy(const torch::Tensor& log_probs);

// The MLP's parameters as named float tensors (the names of mlp_io.h).
std::vector<NamedTensor> named_tensors(ActorCritic& model);
// Copies every parameter (deep copy) into a new module with the same spec.
ActorCritic clone_actor_critic(ActorCritic& model);

// Saves model.pt (the module archive) and policy.json (the spec) into `dir` (which must exist).
void save_model_files(ActorCritic& model, const std::string& dir);
// Loads model.pt of a checkpoint folder into `model` (whose spec must match policy.json).
void load_model_files(ActorCritic& model, const std::string& checkpoint_dir);

}  // namespace conductor
