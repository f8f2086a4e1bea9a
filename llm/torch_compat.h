// The one place where LibTorch versions differ. Conductor builds against Debian's LibTorch 1.13 (CPU,
// the default) and against LibTorch 2.x from PyPI's torch wheel (CUDA, `scripts/build.sh --torch pip`);
// every version test (#if on TORCH_VERSION_*) lives here and in torch_compat.cpp, nowhere else.
//
//   what                           1.13                                  2.x
//   attention                      matmul + f32 softmax (grouped heads)  at::scaled_dot_product_attention
//                                                                        (fused kernels: flash / memory-
//                                                                        efficient on GPU, flash on CPU)
//   c10d collective interface      c10d::ProcessGroup (Gloo/NCCL derive  c10d::Backend (ProcessGroup became
//                                  from it)                              a dispatcher over backends)
#pragma once

#include <torch/torch.h>
#include <torch/version.h>

#include <string>

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5)
#define CONDUCTOR_TORCH_SDPA 1  // at::scaled_dot_product_attention with scale and enable_gqa
#else
#define CONDUCTOR_TORCH_SDPA 0
#endif

namespace c10d {
class ProcessGroup;
class Backend;
}  // namespace c10d

namespace conductor::compat {

// What c10d's Gloo and NCCL process groups derive from, and so what holds one of them.
#if TORCH_VERSION_MAJOR >= 2
using C10dBackend = c10d::Backend;
#else
using C10dBackend = c10d::ProcessGroup;
#endif

// "LibTorch 2.11.0, CUDA 13.0" or "LibTorch 1.13.1, CPU only": what this binary was built against.
std::string torch_build_description();

// True when attention() runs through at::scaled_dot_product_attention (LibTorch >= 2.5).
constexpr bool has_sdpa() { return CONDUCTOR_TORCH_SDPA != 0; }

// Grouped-query attention, scaled by 1/sqrt(head_dim), softmax accumulated in f32:
//   q [B, heads, T, d]; k, v [B, kv_heads, S, d] (heads a multiple of kv_heads; query head h reads KV
//   head h / (heads / kv_heads)); hidden_keys: bool [T, S], true where query t may NOT see key s, or
//   [B, T, S] when each sequence has its own (right-padded rows of different lengths), or undefined
//   when every query sees every key. `causal` says hidden_keys is the plain causal mask of a
//   fresh sequence (T == S, key s hidden from query t iff s > t), which lets the fused kernels use
//   their own causal path instead of a mask tensor.
// Returns [B, heads, T, d].
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& hidden_keys, bool causal);

}  // namespace conductor::compat
