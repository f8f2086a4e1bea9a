#include "trainer/losses.h"

namespace conductor {

torch::Tensor clipped_surrogate_loss(const torch::Tensor& new_logp, const torch::Tensor& old_logp,
                                     const torch::Tensor& advantages, double clip_coef) {
  const auto ratio = (new_logp - old_logp).exp();
  const auto pg1 = -advantages * ratio;
  const auto pg2 = -advantages * torch::clamp(ratio, 1.0 - clip_coef, 1.0 + clip_coef);
  return torch::max(pg1, pg2).mean();
}

torch::Tensor value_loss(const torch::Tensor& new_values, const torch::Tensor& old_values,
                         const torch::Tensor& returns, double clip_coef, bool clipped) {
  const auto unclipped = (new_values - returns).pow(2);
  if (!clipped) return 0.5 * unclipped.mean();
  const auto v_clipped = old_values + torch::clamp(new_values - old_values, -clip_coef, clip_coef);
  const auto clipped_sq = (v_clipped - returns).pow(2);
  return 0.5 * torch::max(unclipped, clipped_sq).mean();
}

torch::Tensor approx_kl_k3(const torch::Tensor& new_logp, const torch::Tensor& old_logp) {
  const auto logratio = new_logp - old_logp;
  return ((logratio.exp() - 1) - logratio).mean();
}

torch::Tensor clip_fraction(const torch::Tensor& new_logp, const torch::Tensor& old_logp, double clip_coef) {
  const auto ratio = (new_logp - old_logp).exp();
  return ((ratio - 1.0).abs() > clip_coef).to(torch::kFloat32).mean();
}

torch::Tensor kl_to_reference_k3(const torch::Tensor& logp, const torch::Tensor& ref_logp) {
  const auto d = ref_logp - logp;
  return (d.exp() - d - 1).mean();
}

torch::Tensor normalize_advantages(const torch::Tensor& advantages) {
  if (advantages.numel() < 2) return advantages - advantages.mean();
  return (advantages - advantages.mean()) / (advantages.std() + 1e-8);
}

}  // namespace conductor
