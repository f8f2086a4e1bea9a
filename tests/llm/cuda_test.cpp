// The model on a GPU (CUDA builds with a visible GPU; elsewhere each test skips saying why): the
// same random weights give the same logits on cuda:0 as on the CPU, in f32 and through the fused
// attention kernels in bf16, with and without a KV cache.
#include <gtest/gtest.h>

#include "llm/qwen2.h"
#include "llm/torch_compat.h"
#include "tests/llm/llm_test_util.h"

namespace conductor::llm {
namespace {

using testing::random_ids;
using testing::rel_err;
using testing::tiny_model;

#define CONDUCTOR_REQUIRE_GPU()                                                                      \
  if (!torch::cuda::is_available())                                                                  \
  GTEST_SKIP() << "no CUDA GPU is visible (" << compat::torch_build_description()                   \
               << "): the GPU tests run on a GPU machine (scripts/gpu-check.sh runs the GPU check)"

TEST(Qwen2Cuda, F32LogitsOnTheGpuEqualTheCpus) {
  CONDUCTOR_REQUIRE_GPU();
  torch::NoGradGuard no_grad;
  Qwen2ForCausalLM cpu = tiny_model(3, /*tied=*/false);
  Qwen2ForCausalLM gpu = tiny_model(3, /*tied=*/false);
  gpu->to(torch::Device(torch::kCUDA, 0));
  const torch::Tensor ids = random_ids(2, 24, cpu->config().vocab_size, 4);
  const torch::Tensor want = cpu->forward(ids);
  EXPECT_LT(rel_err(gpu->forward(ids.to(torch::kCUDA)).cpu(), want), 1e-5);
  // Prefill then decode through the cache: the masked (non-causal) attention path.
  KVCache cache = gpu->make_cache(2, 24);
  torch::Tensor steps = gpu->forward(ids.narrow(1, 0, 20).to(torch::kCUDA), &cache);
  for (int64_t t = 20; t < 24; ++t) steps = torch::cat({steps, gpu->forward(ids.narrow(1, t, 1).to(torch::kCUDA), &cache)}, 1);
  EXPECT_LT(rel_err(steps.cpu(), want), 1e-5);
}

TEST(Qwen2Cuda, Bf16FusedAttentionWithinTheBf16Tolerance) {
  CONDUCTOR_REQUIRE_GPU();
  torch::NoGradGuard no_grad;
  Qwen2ForCausalLM cpu = tiny_model(5);
  Qwen2ForCausalLM gpu = tiny_model(5);  // the same weights, then rounded to bf16 on the GPU
  gpu->to(torch::Device(torch::kCUDA, 0), torch::kBFloat16);
  const torch::Tensor ids = random_ids(1, 64, cpu->config().vocab_size, 6);
  // 2.5e-2 of the largest logit: the bf16 tolerance of the CPU golden tests (qwen2_test.cpp).
  EXPECT_LT(rel_err(gpu->forward(ids.to(torch::kCUDA)).to(torch::kFloat32).cpu(), cpu->forward(ids)), 2.5e-2);
}

}  // namespace
}  // namespace conductor::llm
