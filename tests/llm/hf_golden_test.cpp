// The Qwen2 model against the ecosystem's implementation: HF transformers' Qwen2ForCausalLM (5.25.0 on
// torch 2.11.0, run by tests/llm/reference/make_hf_golden.py on the same checked-in random HF-layout
// fixtures: tied and untied, one file and sharded, stored in f32, bf16 and f16). Python is not needed
// here: the golden logits are checked in as <fixture>/hf_reference.safetensors.
#include <gtest/gtest.h>

#include <cstring>

#include "artifacts/safetensors.h"
#include "llm/hf_checkpoint.h"
#include "llm/qwen2.h"
#include "tests/llm/llm_test_util.h"

namespace conductor::llm {
namespace {

using testing::fixture;
using testing::rel_err;

const char* const kFixtures[] = {"tied_f32_single", "untied_f32_sharded", "tied_bf16_sharded",
                                 "untied_bf16_single", "tied_f16_single"};

torch::Tensor f32_of(const safetensors::File& f, const std::string& name) {
  const auto& t = f.at(name);
  return torch::from_blob(const_cast<char*>(t.data.data()), t.shape, torch::kFloat32).clone();
}

torch::Tensor ids_of(const safetensors::File& f, int k) {
  const auto& t = f.at("ids_" + std::to_string(k));
  return torch::from_blob(const_cast<char*>(t.data.data()), {1, t.shape[0]}, torch::kInt64).clone();
}

// f32: every logit within 1e-5 of transformers' (absolute; the largest logits are 2 to 6 here, so
// this is a few float32 roundings of the largest value: the two differ only in summation order).
TEST(Qwen2Transformers, F32LogitsEqualTransformersWithin1e5) {
  for (const char* name : kFixtures) {
    SCOPED_TRACE(name);
    Qwen2ForCausalLM m = load_hf_checkpoint(fixture(name), {DType::kF32});
    const auto ref = safetensors::read_file(fixture(name) + "/reference.safetensors");
    const auto hf = safetensors::read_file(fixture(name) + "/hf_reference.safetensors");
    torch::NoGradGuard no_grad;
    for (int k = 0; k < 3; ++k) {
      const torch::Tensor want = f32_of(hf, "f32_logits_" + std::to_string(k));
      const torch::Tensor got = m->forward(ids_of(ref, k))[0];
      ASSERT_EQ(got.sizes(), want.sizes());
      const double diff = (got - want).abs().max().item<double>();
      EXPECT_LT(diff, 1e-5) << "sequence " << k;
      EXPECT_GT(want.abs().max().item<double>(), 1.0);  // the logits are not all near 0
    }
  }
}

// bf16 compute. Two bf16 forwards that round in different places differ by about as much as either
// differs from the exact logits (bf16 keeps 8 significant bits, unit roundoff 2^-9, and a forward rounds
// dozens of times), so the tolerance is stated against transformers' own bf16 error: ours, measured
// from transformers' f32 logits, is at most 2x transformers' bf16 error plus 2^-8 of the largest logit
// (one bf16 ulp of it), and the two bf16 results are within 2.5e-2 of each other relative to it.
TEST(Qwen2Transformers, Bf16LogitsAsCloseAsTransformersOwnBf16) {
  for (const char* name : kFixtures) {
    SCOPED_TRACE(name);
    Qwen2ForCausalLM m = load_hf_checkpoint(fixture(name), {DType::kBF16});
    const auto ref = safetensors::read_file(fixture(name) + "/reference.safetensors");
    const auto hf = safetensors::read_file(fixture(name) + "/hf_reference.safetensors");
    torch::NoGradGuard no_grad;
    for (int k = 0; k < 3; ++k) {
      const torch::Tensor exact = f32_of(hf, "f32_logits_" + std::to_string(k));
      const torch::Tensor theirs = f32_of(hf, "bf16_logits_" + std::to_string(k));
      const torch::Tensor ours = m->forward(ids_of(ref, k))[0].to(torch::kFloat32);
      const double their_err = rel_err(theirs, exact), our_err = rel_err(ours, exact);
      EXPECT_LE(our_err, 2 * their_err + 1.0 / 256) << "sequence " << k << ": transformers' bf16 error " << their_err;
      EXPECT_LT(rel_err(ours, theirs), 2.5e-2) << "sequence " << k;
      EXPECT_GT(our_err, 0.0);  // it did compute in bf16
    }
  }
}

}  // namespace
}  // namespace conductor::llm
