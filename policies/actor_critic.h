// The MLP kind's LibTorch side: the actor-critic module and its PolicyModel (training interface).
// Eval and serving use the torch-free policies/mlp.h.
//
// Separate actor and critic trunks as in CleanRL's ppo.py, with its orthogonal initialization:
// hidden layers gain sqrt(2), the policy head gain 0.01 (near-uniform initial policy), the value
// head gain 1.0; biases 0. Initialization draws from torch's global generator: seed it with
// torch::manual_seed before constructing for reproducible weights.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "policies/mlp.h"
#include "policies/policy_model.h"

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

// The MLP as a PolicyModel: encodes rows by copying the dense observation.
class MlpModel final : public PolicyModel {
 public:
  explicit MlpModel(const MlpSpec& spec) : module_(spec) {}
  explicit MlpModel(ActorCritic module) : module_(std::move(module)) {}

  std::string kind() const override { return "mlp"; }
  int n_actions() const override { return module_->spec().n_actions; }
  ObsNeeds needs() const override { return ObsNeeds{module_->spec().obs_dim, false}; }
  void encode(const ObsBatch& obs, EncodedObs& out) const override;
  PolicyOutput forward(const EncodedObs& enc, const torch::Tensor& rows) override;
  torch::Tensor logits(const EncodedObs& enc, const torch::Tensor& rows) override;
  torch::Tensor value(const EncodedObs& enc, const torch::Tensor& rows) override;
  std::vector<torch::Tensor> parameters() override { return module_->parameters(); }
  std::vector<torch::Tensor> policy_parameters() override { return module_->actor->parameters(); }
  void save(const std::string& dir) override;
  void load(const std::string& dir) override;
  void save_weights(const std::string& path) override;
  void load_weights(const std::string& path) override;
  std::unique_ptr<PolicyModel> frozen_copy() override;
  std::unique_ptr<Policy> inference_policy() override;

  ActorCritic& module() { return module_; }

 private:
  torch::Tensor rows_of(const EncodedObs& enc, const torch::Tensor& rows) const;
  ActorCritic module_;
};

// The parameters as named float tensors (the names of policies/mlp.h).
std::vector<NamedTensor> named_tensors(ActorCritic& model);
// Every tensor (actor and critic) of the MLP checkpoint in a run folder or checkpoint folder.
std::vector<NamedTensor> load_mlp_tensors(const std::string& run_or_checkpoint_dir, MlpSpec* spec = nullptr);

}  // namespace conductor
