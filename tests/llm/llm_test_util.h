// Helpers shared by the llm test files.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "core/error.h"
#include "llm/qwen2.h"
#include "tests/test_util.h"

namespace conductor::llm::testing {

// max |a - b| / max |b|: the error relative to the largest reference logit (the tests' measure).
inline double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor x = a.detach().to(torch::kFloat64), y = b.detach().to(torch::kFloat64);
  EXPECT_EQ(x.sizes(), y.sizes());
  return ((x - y).abs().max() / y.abs().max()).item<double>();
}

inline std::string fixture(const std::string& name) {
  return std::string(CONDUCTOR_SOURCE_DIR) + "/tests/llm/fixtures/" + name;
}

// The tiny preset with seeded random weights.
inline Qwen2ForCausalLM tiny_model(uint64_t seed = 1, bool tied = true, DType dtype = DType::kF32) {
  torch::manual_seed(seed);
  Qwen2Config c = Qwen2Config::preset("tiny");
  c.tie_word_embeddings = tied;
  c.initializer_range = 0.2;  // larger than HF's 0.02 so that attention is far from uniform
  return Qwen2ForCausalLM(c, dtype);
}

inline torch::Tensor random_ids(int64_t batch, int64_t T, int64_t vocab, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, vocab, {batch, T}, torch::kInt64);
}

using conductor::testing::expect_error;  // tests/test_util.h

}  // namespace conductor::llm::testing
