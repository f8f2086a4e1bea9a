// PPO / GRPO loss terms as free functions (LibTorch), tested against hand-computed values.
// Conventions follow CleanRL's ppo.py; all return scalars (means over the minibatch).
#pragma once

#include <torch/torch.h>

namespace conductor {

// max(-A * ratio, -A * clamp(ratio, 1 - clip, 1 + clip)).mean(), ratio = exp(new_logp - old_logp).
torch::Tensor clipped_surrogate_loss(const torch::Tensor& new_logp, const torch::Tensor& old_logp,
                                     const torch::Tensor& advantages, double clip_coef);

// Unclipped: 0.5 * mean((V - R)^2). Clipped: 0.5 * mean(max((V - R)^2,
// (V_old + clamp(V - V_old, -clip, clip) - R)^2)).
torch::Tensor value_loss(const torch::Tensor& new_values, const torch::Tensor& old_values,
                         const torch::Tensor& returns, double clip_coef, bool clipped);

// Schulman's k3 estimator of KL(old || new) from samples of old: mean((ratio - 1) - log ratio).
torch::Tensor approx_kl_k3(const torch::Tensor& new_logp, const torch::Tensor& old_logp);

// Share of samples whose |ratio - 1| > clip.
torch::Tensor clip_fraction(const torch::Tensor& new_logp, const torch::Tensor& old_logp, double clip_coef);

// k3 estimate of KL(pi || ref) from samples of pi (as DeepSeekMath's GRPO):
// mean(exp(ref_logp - logp) - (ref_logp - logp) - 1).
torch::Tensor kl_to_reference_k3(const torch::Tensor& logp, const torch::Tensor& ref_logp);

// (A - mean) / (std + 1e-8) with torch's (unbiased) std, as CleanRL; a single sample is only centred.
torch::Tensor normalize_advantages(const torch::Tensor& advantages);

}  // namespace conductor
