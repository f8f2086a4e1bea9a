#include "llm/torch_compat.h"

#include <cmath>
#include <limits>

namespace conductor::compat {

std::string torch_build_description() {
  std::string s = "LibTorch " TORCH_VERSION;
#ifdef CONDUCTOR_TORCH_CUDA_VERSION
  s += ", CUDA " CONDUCTOR_TORCH_CUDA_VERSION;
#else
  s += ", CPU only";
#endif
  return s;
}

namespace {

// The g query heads that share a KV head, stacked as g*T rows: one product per KV head does the work
// of repeat_kv without copying K and V g times. The mask, [T, S], is tiled to [g*T, S].
torch::Tensor grouped_rows(const torch::Tensor& q, int64_t kv_heads) {
  return q.reshape({q.size(0), kv_heads, q.size(1) / kv_heads * q.size(2), q.size(3)});
}

torch::Tensor ungroup(const torch::Tensor& out, const torch::Tensor& q) { return out.reshape(q.sizes()); }

#if !CONDUCTOR_TORCH_SDPA
torch::Tensor matmul_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& hidden_keys) {
  const int64_t B = q.size(0), kvh = k.size(1), g = q.size(1) / kvh, T = q.size(2), S = k.size(2);
  const torch::Tensor qg = grouped_rows(q, kvh);
  torch::Tensor scores = torch::matmul(qg, k.transpose(-1, -2)).mul_(1.0 / std::sqrt(static_cast<double>(q.size(3))));
  if (hidden_keys.defined())
    scores.view({B, kvh, g, T, S})
        .masked_fill_(hidden_keys.dim() == 3 ? hidden_keys.view({B, 1, 1, T, S}) : hidden_keys,
                      -std::numeric_limits<double>::infinity());
  const torch::Tensor probs = torch::softmax(scores, -1, torch::kFloat32).to(q.scalar_type());
  return ungroup(torch::matmul(probs, v), q);
}
#endif

}  // namespace

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& hidden_keys, bool causal) {
#if CONDUCTOR_TORCH_SDPA
  const int64_t kvh = k.size(1), g = q.size(1) / kvh;
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(3)));
  if (causal) {  // the kernels' own causal path (flash attention on GPU and CPU), GQA without copies
    return at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true, scale, /*enable_gqa=*/true);
  }
  // Grouped rows: every row of a group reads the same keys, so the [T, S] mask tiles to [g*T, S].
  const torch::Tensor qg = grouped_rows(q, kvh);
  c10::optional<torch::Tensor> mask;
  if (hidden_keys.defined())  // [B, T, S] tiles to [B, 1, g*T, S] (one mask per sequence, every KV head)
    mask = hidden_keys.dim() == 3 ? hidden_keys.logical_not().repeat({1, g, 1}).unsqueeze(1)
                                  : hidden_keys.logical_not().repeat({g, 1});
  return ungroup(at::scaled_dot_product_attention(qg, k, v, mask, 0.0, false, scale), q);
#else
  (void)causal;
  return matmul_attention(q, k, v, hidden_keys);
#endif
}

}  // namespace conductor::compat
