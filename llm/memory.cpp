#include "llm/memory.h"

#include <cstdio>
#include <fstream>
#include <sstream>

namespace conductor::llm {

int64_t activation_bytes_per_token(const Qwen2Config& c, DType d, int64_t seq_len, bool lora_f32_inputs) {
  const int64_t b = dtype_bytes(d), H = c.hidden_size, I = c.intermediate_size;
  const int64_t K = c.num_key_value_heads * c.head_dim(), h = c.num_attention_heads;
  int64_t per_layer = b * (10 * H + 2 * K + 5 * I) + 8 * H + h * seq_len * (4 + b);
  if (lora_f32_inputs && d != DType::kF32) per_layer += 4 * (4 * H + I);
  return c.num_hidden_layers * per_layer + 8 * c.vocab_size;
}

MemoryEstimate estimate_memory(const Qwen2Config& config, DType dtype, int64_t lora_parameters, int64_t tokens) {
  MemoryEstimate e;
  const int64_t b = dtype_bytes(dtype);
  e.parameters = config.num_parameters();
  e.weight_bytes = e.parameters * b;
  e.lora_parameters = lora_parameters;
  e.lora_bytes = lora_parameters * 4;
  e.lora_grad_bytes = lora_parameters * 4;
  e.lora_adam_bytes = 2 * lora_parameters * 4;
  e.full_grad_bytes = e.parameters * b;
  e.full_adam_bytes = e.parameters * (dtype == DType::kF32 ? 8 : 12);
  e.kv_bytes_per_token = config.kv_cache_bytes_per_token(dtype);
  e.tokens = tokens;
  e.activation_bytes_per_token = activation_bytes_per_token(config, dtype, tokens, lora_parameters > 0);
  return e;
}

namespace {
// "Key:   1234 kB" lines of a /proc file.
int64_t proc_kb(const char* path, const std::string& key) {
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::istringstream is(line.substr(key.size() + 1));
    int64_t kb = 0;
    is >> kb;
    return kb * 1024;
  }
  return 0;
}
}  // namespace

ProcessMemory process_memory() { return {proc_kb("/proc/self/status", "VmRSS"), proc_kb("/proc/self/status", "VmHWM")}; }

bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

MachineMemory machine_memory() { return {proc_kb("/proc/meminfo", "MemTotal"), proc_kb("/proc/meminfo", "MemAvailable")}; }

std::string human_bytes(int64_t bytes) {
  char buf[64];
  const double v = static_cast<double>(bytes);
  if (bytes >= 1000LL * 1000 * 1000)
    std::snprintf(buf, sizeof buf, "%.2f GB", v / 1e9);
  else if (bytes >= 1000LL * 1000)
    std::snprintf(buf, sizeof buf, "%.1f MB", v / 1e6);
  else if (bytes >= 1000)
    std::snprintf(buf, sizeof buf, "%.1f kB", v / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(bytes));
  return buf;
}

}  // namespace conductor::llm
