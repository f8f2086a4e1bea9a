// PPO loss terms against hand computations (CleanRL conventions).
#include <gtest/gtest.h>

#include <cmath>

#include "trainer/losses.h"

namespace conductor {
namespace {

TEST(PpoLosses, ClippedSurrogate) {
  // ratio = [1.5, 0.5, 1.1], A = [1, -1, 2], clip 0.2: clamp = [1.2, 0.8, 1.1];
  // -A*ratio = [-1.5, 0.5, -2.2], -A*clamp = [-1.2, 0.8, -2.2]; max = [-1.2, 0.8, -2.2]; mean -2.6/3.
  const auto old_lp = torch::zeros({3});
  const auto new_lp = torch::tensor({std::log(1.5f), std::log(0.5f), std::log(1.1f)});
  const auto adv = torch::tensor({1.0f, -1.0f, 2.0f});
  EXPECT_NEAR(clipped_surrogate_loss(new_lp, old_lp, adv, 0.2).item<double>(), -2.6 / 3, 1e-6);
  EXPECT_NEAR(clip_fraction(new_lp, old_lp, 0.2).item<double>(), 2.0 / 3, 1e-7);
  // k3: (r - 1) - ln r = [0.5 - 0.405465, -0.5 + 0.693147, 0.1 - 0.0953102]; mean 0.0974573.
  EXPECT_NEAR(approx_kl_k3(new_lp, old_lp).item<double>(), 0.0974573, 1e-6);
}

TEST(PpoLosses, ClippedValueLoss) {
  // V = [1, 2], V_old = [0.5, 2.5], R = [2, 1], clip 0.2: unclipped squares [1, 1];
  // V_clip = [0.7, 2.3], squares [1.69, 1.69]; clipped loss 0.5 * 1.69 = 0.845, unclipped 0.5.
  const auto v = torch::tensor({1.0f, 2.0f});
  const auto v_old = torch::tensor({0.5f, 2.5f});
  const auto ret = torch::tensor({2.0f, 1.0f});
  EXPECT_NEAR(value_loss(v, v_old, ret, 0.2, true).item<double>(), 0.845, 1e-6);
  EXPECT_NEAR(value_loss(v, v_old, ret, 0.2, false).item<double>(), 0.5, 1e-7);
  // Inside the clip range the clipped term equals the unclipped one.
  const auto v2 = torch::tensor({0.6f, 2.4f});
  EXPECT_NEAR(value_loss(v2, v_old, ret, 0.2, true).item<double>(),
              0.5 * ((0.6 - 2) * (0.6 - 2) + (2.4 - 1) * (2.4 - 1)) / 2, 1e-6);
}

TEST(PpoLosses, ReferenceKlAndAdvantageNormalization) {
  // d = ref - logp = [0, ln 2]: exp(d) - d - 1 = [0, 1 - 0.693147]; mean 0.1534264.
  const auto lp = torch::tensor({-1.0f, std::log(0.25f)});
  const auto ref = torch::tensor({-1.0f, std::log(0.5f)});
  EXPECT_NEAR(kl_to_reference_k3(lp, ref).item<double>(), 0.1534264, 1e-6);
  // [1, 2, 3]: mean 2, unbiased std 1 -> [-1, 0, 1].
  const auto n = normalize_advantages(torch::tensor({1.0f, 2.0f, 3.0f}));
  EXPECT_NEAR(n[0].item<double>(), -1.0, 1e-6);
  EXPECT_NEAR(n[2].item<double>(), 1.0, 1e-6);
}

}  // namespace
}  // namespace conductor
