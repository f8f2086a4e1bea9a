// The memory arithmetic of `conductor model info`, checked by hand for Qwen2.5-7B (bf16).
#include "llm/memory.h"

#include <gtest/gtest.h>

#include "llm/lora.h"

namespace conductor::llm {
namespace {

TEST(Memory, Qwen25_7bArithmetic) {
  const Qwen2Config c = Qwen2Config::preset("qwen2.5-7b");
  LoraConfig lora;
  lora.r = 16;
  // Per layer, r x (in + out) for q (3584+3584), k and v (3584+512), o (3584+3584), gate, up and
  // down (3584+18944): 16 x 90112 = 1441792; x 28 layers.
  const int64_t lp = lora_parameters(c, lora);
  EXPECT_EQ(lp, 40370176);
  const MemoryEstimate e = estimate_memory(c, DType::kBF16, lp, 1024);
  EXPECT_EQ(e.weight_bytes, 2 * 7615616512);  // 15.23 GB
  EXPECT_EQ(e.lora_bytes, 4 * 40370176);
  EXPECT_EQ(e.lora_adam_bytes, 8 * 40370176);
  EXPECT_EQ(e.full_grad_bytes + e.full_adam_bytes, 14 * 7615616512);  // bf16 grads + f32 master, m, v
  EXPECT_EQ(e.kv_bytes_per_token, 57344);
  // Activations per token at S = 1024: 28 x (2 (10*3584 + 2*512 + 5*18944) + 8*3584 + 28*1024*6
  // + 4 (4*3584 + 18944)) + 8 * 152064.
  const int64_t per_layer = 2 * (35840 + 1024 + 94720) + 28672 + 172032 + 4 * (14336 + 18944);
  EXPECT_EQ(e.activation_bytes_per_token, 28 * per_layer + 8 * 152064);
  EXPECT_EQ(e.inference_bytes(), e.weight_bytes + 1024 * 57344);
  lora.layers = {26, 27};
  EXPECT_EQ(lora_parameters(c, lora), 2 * 1441792);
}

TEST(Memory, ProcessAndMachineFiguresAreRead) {
  const ProcessMemory p = process_memory();
  EXPECT_GT(p.rss_bytes, 0);
  EXPECT_GE(p.peak_rss_bytes, p.rss_bytes);
  const MachineMemory m = machine_memory();
  EXPECT_GT(m.total_bytes, 0);
  EXPECT_LE(m.available_bytes, m.total_bytes);
  EXPECT_EQ(human_bytes(15231233024), "15.23 GB");
  EXPECT_EQ(human_bytes(57344), "57.3 kB");
}

}  // namespace
}  // namespace conductor::llm
