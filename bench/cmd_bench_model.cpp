// `conductor bench model`: Qwen2 forward and KV-cache decode throughput, an optional LoRA train
// step and peak memory (llm/qwen2.h; docs/transformer.md).
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <thread>

#include "bench/commands.h"
#include "core/error.h"
#include "core/json_util.h"
#include "llm/hf_checkpoint.h"
#include "llm/lora.h"
#include "llm/memory.h"
#include "llm/qwen2.h"

namespace conductor::bench {
namespace {

using namespace conductor::llm;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string millions(int64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fM", static_cast<double>(n) / 1e6);
  return buf;
}

struct BenchResult {
  double forward_tokens_per_s = 0, forward_best_tokens_per_s = 0, hidden_tokens_per_s = 0, decode_tokens_per_s = 0, train_tokens_per_s = 0, train_step_s = 0;
  double load_s = 0, forward_cpu_s = 0;
  int64_t load_peak_bytes = 0, load_base_bytes = 0, peak_bytes = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Reads one element, which waits for a GPU to finish the work that produced `t`.
float wait_for(const torch::Tensor& t) { return t.reshape({-1})[0].item<float>(); }

// Timed forwards (all logits, then hidden states only) of `ids` and, with decode > 0, KV-cache
// decoding after it: the throughputs of `bench model` into r.
void time_forward(Qwen2ForCausalLM& m, const torch::Tensor& ids, int repeats, int64_t decode, BenchResult& r) {
  const int64_t T = ids.size(1);
  torch::InferenceMode guard;
  wait_for(m->forward(ids));  // warm-up
  std::vector<double> times, cpu;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::clock_t c0 = std::clock();  // CPU time of every thread of the process
    wait_for(m->forward(ids));
    times.push_back(seconds_since(t0));
    cpu.push_back(static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC);
  }
  r.forward_tokens_per_s = T / median(times);
  r.forward_best_tokens_per_s = T / *std::min_element(times.begin(), times.end());
  r.forward_cpu_s = median(cpu);
  times.clear();
  for (int i = 0; i < repeats; ++i) {  // what a policy that reads a few vocabulary rows pays
    const auto t0 = std::chrono::steady_clock::now();
    wait_for(m->forward_hidden(ids));
    times.push_back(seconds_since(t0));
  }
  r.hidden_tokens_per_s = T / median(times);
  if (decode > 0) {
    KVCache cache = m->make_cache(1, T + decode);
    torch::Tensor next = m->forward(ids, &cache).select(1, T - 1).argmax(-1, true);
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < decode; ++i) next = m->forward(next, &cache).select(1, 0).argmax(-1, true);
    wait_for(next.to(torch::kFloat32));
    r.decode_tokens_per_s = decode / seconds_since(t0);
  }
}

}  // namespace

void add_bench_model(CLI::App& bench) {
  auto* cmd = bench.add_subcommand("model", "Qwen2 forward and KV-cache decode throughput, optional LoRA train step, peak memory");
  auto preset = std::make_shared<std::string>();
  auto checkpoint = std::make_shared<std::string>();
  auto dtype = std::make_shared<std::string>("f32");
  auto tokens = std::make_shared<int64_t>(128);
  auto decode = std::make_shared<int64_t>(32);
  auto threads = std::make_shared<int>(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  auto repeats = std::make_shared<int>(5);
  auto lora_rank = std::make_shared<int64_t>(0);
  auto device = std::make_shared<std::string>("cpu");
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("--preset", *preset, "Model preset (random weights, seed 1)");
  cmd->add_option("--checkpoint", *checkpoint, "HF checkpoint directory instead of a preset (load time and peak are measured)");
  cmd->add_option("--dtype", *dtype, "f32 (default) or bf16 (f16 on CUDA)");
  cmd->add_option("--tokens", *tokens, "Tokens per forward (one sequence; default 128)")->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--decode-tokens", *decode, "Tokens decoded one at a time after the prompt (default 32; 0 skips)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  cmd->add_option("--threads", *threads, "torch threads (default: all cores)")->check(CLI::Range(1, 1024));
  cmd->add_option("--repeats", *repeats, "Timed forwards; the median is reported (default 5)")->check(CLI::Range(1, 10000));
  cmd->add_option("--lora-rank", *lora_rank, "Also time one LoRA forward+backward at this rank (all 7 targets)");
  cmd->add_option("--device", *device, "cpu (default) or cuda[:N]");
  cmd->add_flag("--json", *as_json, "One JSON line instead of the table");
  cmd->callback([=] {
    if (preset->empty() == checkpoint->empty()) fail("bench model: give exactly one of --preset NAME or --checkpoint DIR");
    torch::set_num_threads(*threads);
    const DType d = parse_dtype(*dtype);
    const torch::Device dev = parse_device(*device);
    BenchResult r;
    Qwen2ForCausalLM m{nullptr};
    if (!checkpoint->empty()) {
      reset_peak_rss();
      r.load_base_bytes = process_memory().rss_bytes;
      const auto t0 = std::chrono::steady_clock::now();
      m = load_hf_checkpoint(*checkpoint, {d, dev});
      r.load_s = seconds_since(t0);
      r.load_peak_bytes = process_memory().peak_rss_bytes;
    } else {
      torch::manual_seed(1);
      m = Qwen2ForCausalLM(Qwen2Config::preset(*preset), d, dev);
    }
    m->eval();
    const Qwen2Config& c = m->config();
    const int64_t weight_bytes = m->weight_bytes();  // before any adapter is added
    const int64_t T = *tokens;
    torch::manual_seed(2);
    const torch::Tensor ids = torch::randint(0, c.vocab_size, {1, T}, torch::kInt64);
    time_forward(m, ids, *repeats, *decode, r);
    if (*lora_rank > 0) {
      LoraConfig lora;
      lora.r = *lora_rank;
      lora.alpha = 2.0 * static_cast<double>(*lora_rank);
      apply_lora(m, lora);
      m->train();
      const auto t0 = std::chrono::steady_clock::now();
      const torch::Tensor logits = m->forward(ids.narrow(1, 0, T - 1 > 0 ? T - 1 : 1));
      const torch::Tensor target = ids.narrow(1, T > 1 ? 1 : 0, T - 1 > 0 ? T - 1 : 1).reshape({-1}).to(dev);
      const torch::Tensor loss = torch::nn::functional::cross_entropy(
          logits.reshape({-1, logits.size(-1)}).to(torch::kFloat32), target);
      loss.backward();
      wait_for(m->model->layer(0)->self_attn->q_proj->lora_B->weight.grad());
      r.train_step_s = seconds_since(t0);
      r.train_tokens_per_s = static_cast<double>(std::max<int64_t>(T - 1, 1)) / r.train_step_s;
    }
    r.peak_bytes = process_memory().peak_rss_bytes;

    const std::string name = checkpoint->empty() ? *preset : *checkpoint;
    const char* blas_env = std::getenv("OPENBLAS_NUM_THREADS");
    if (*as_json) {
      json j = {{"impl", "conductor"}, {"model", name}, {"dtype", dtype_name(d)}, {"threads", *threads},
                {"tokens", T}, {"forward_tokens_per_s", r.forward_tokens_per_s},
                {"forward_best_tokens_per_s", r.forward_best_tokens_per_s}, {"forward_cpu_s", r.forward_cpu_s},
                {"hidden_tokens_per_s", r.hidden_tokens_per_s},
                {"decode_tokens_per_s", r.decode_tokens_per_s}, {"peak_rss_bytes", r.peak_bytes},
                {"weight_bytes", weight_bytes}};
      if (!checkpoint->empty()) {
        j["load_s"] = r.load_s;
        j["load_peak_rss_bytes"] = r.load_peak_bytes;
        j["load_base_rss_bytes"] = r.load_base_bytes;
      }
      if (*lora_rank > 0) j["lora_train_step_s"] = r.train_step_s;
      std::printf("%s\n", j.dump().c_str());
      return;
    }
    std::printf("model %s: %s parameters, %s, %s weights (%s), device %s, torch threads %d, OPENBLAS_NUM_THREADS=%s\n",
                name.c_str(), millions(c.num_parameters()).c_str(), c.tie_word_embeddings ? "tied" : "untied",
                dtype_name(d), human_bytes(weight_bytes).c_str(), dev.str().c_str(), *threads,
                blas_env ? blas_env : "(unset)");
    if (!checkpoint->empty())
      std::printf("%-34s %.2f s; peak RSS while loading %s = %.3f x the weights; %.3f x above the RSS before loading (%s)\n",
                  "load", r.load_s, human_bytes(r.load_peak_bytes).c_str(),
                  static_cast<double>(r.load_peak_bytes) / static_cast<double>(weight_bytes),
                  static_cast<double>(r.load_peak_bytes - r.load_base_bytes) / static_cast<double>(weight_bytes),
                  human_bytes(r.load_base_bytes).c_str());
    std::printf("%-34s %10.1f tokens/s  (1 x %lld tokens, median of %d; best %.1f; %.2f CPU-s per forward)\n",
                "forward (prefill, all logits)", r.forward_tokens_per_s, (long long)T, *repeats, r.forward_best_tokens_per_s,
                r.forward_cpu_s);
    std::printf("%-34s %10.1f tokens/s  (no LM head: final hidden states only)\n", "forward, hidden states",
                r.hidden_tokens_per_s);
    if (*decode > 0)
      std::printf("%-34s %10.1f tokens/s  (%lld tokens after a %lld-token prompt, KV cache)\n", "decode", r.decode_tokens_per_s,
                  (long long)*decode, (long long)T);
    if (*lora_rank > 0)
      std::printf("%-34s %10.1f tokens/s  (one forward+backward of %lld tokens, %.2f s)\n",
                  ("LoRA r=" + std::to_string(*lora_rank) + " train step").c_str(), r.train_tokens_per_s,
                  (long long)std::max<int64_t>(T - 1, 1), r.train_step_s);
    std::printf("%-34s %s\n", "peak RSS (whole run)", human_bytes(r.peak_bytes).c_str());
  });
}

}  // namespace conductor::bench
