// `conductor model info|logits|init`: the Qwen2 model layer (llm/) from the command line -- memory
// arithmetic, reference logits of a checkpoint, random checkpoints. Its throughput is `conductor
// bench model` (bench/cmd_bench_model.cpp).
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <thread>

#include "artifacts/safetensors.h"
#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_util.h"
#include "core/log.h"
#include "llm/hf_checkpoint.h"
#include "llm/lora.h"
#include "llm/memory.h"
#include "llm/qwen2.h"

namespace conductor::cli {
namespace {

using namespace conductor::llm;
namespace fs = std::filesystem;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

std::vector<int64_t> parse_token_ids(const std::string& s) {
  std::vector<int64_t> ids;
  for (const auto& part : split(s, ',')) {
    std::size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (part.empty() || used != part.size()) fail("--token-ids: '", part, "' is not an integer (expected e.g. 1,2,3)");
    ids.push_back(v);
  }
  return ids;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string millions(int64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fM", static_cast<double>(n) / 1e6);
  return buf;
}

// The model's config from --preset or --checkpoint (exactly one).
Qwen2Config config_from(const std::string& preset, const std::string& checkpoint, std::string* label) {
  if (preset.empty() == checkpoint.empty()) fail("give exactly one of --preset NAME or --checkpoint DIR");
  if (!preset.empty()) {
    *label = preset + " (preset)";
    return Qwen2Config::preset(preset);
  }
  *label = checkpoint + " (checkpoint)";
  return read_hf_config(checkpoint);
}

// Weights files of a checkpoint directory: names, dtypes and bytes from their headers (mapped).
void describe_checkpoint_files(const std::string& dir) {
  std::vector<std::string> files;
  if (fs::exists(fs::path(dir) / "model.safetensors")) {
    files.push_back("model.safetensors");
  } else if (fs::exists(fs::path(dir) / "model.safetensors.index.json")) {
    const std::string index = (fs::path(dir) / "model.safetensors.index.json").string();
    const json j = parse_json(conductor::read_file(index), index);
    std::set<std::string> shards;
    if (j.contains("weight_map") && j.at("weight_map").is_object())
      for (const auto& [name, f] : j.at("weight_map").items())
        if (f.is_string()) shards.insert(f.get<std::string>());
    files.assign(shards.begin(), shards.end());
  }
  if (files.empty()) {
    std::printf("weights files: none found\n");
    return;
  }
  uint64_t bytes = 0;
  int64_t tensors = 0;
  std::set<std::string> dtypes;
  for (const auto& f : files) {
    const std::string path = (fs::path(dir) / f).string();
    if (!fs::exists(path)) {
      std::printf("weights files: %s is missing\n", f.c_str());
      return;
    }
    const safetensors::MappedFile m(path);
    for (const auto& [name, v] : m.tensors()) {
      bytes += v.nbytes;
      ++tensors;
      dtypes.insert(safetensors::dtype_name(v.dtype));
    }
  }
  std::string dt;
  for (const auto& d : dtypes) dt += (dt.empty() ? "" : ", ") + d;
  std::printf("weights files: %zu (%s), %lld tensors, %s of tensor data\n", files.size(), dt.c_str(),
              static_cast<long long>(tensors), human_bytes(static_cast<int64_t>(bytes)).c_str());
}

void print_fit(const char* what, int64_t need, int64_t available, int64_t total) {
  const bool fits = need <= available;
  std::printf("  %-34s %-12s needs %s of %s available (%s total)\n", what, fits ? "fits:" : "does NOT fit:",
              human_bytes(need).c_str(), human_bytes(available).c_str(), human_bytes(total).c_str());
}

void print_gpu(const char* what, int64_t need) {
  std::printf("  %-34s needs %-10s 80 GB GPU: %-5s 141 GB GPU: %s\n", what, human_bytes(need).c_str(),
              need <= 80LL * 1000 * 1000 * 1000 ? "fits" : "no", need <= 141LL * 1000 * 1000 * 1000 ? "fits" : "no");
}

// ---- model info ----
void setup_model_info(CLI::App* model) {
  auto* info = model->add_subcommand("info", "Shapes, parameter count and memory arithmetic of a preset or HF checkpoint");
  auto preset = std::make_shared<std::string>();
  auto checkpoint = std::make_shared<std::string>();
  auto dtype = std::make_shared<std::string>();
  auto rank = std::make_shared<int64_t>(16);
  auto alpha = std::make_shared<double>(32.0);
  auto targets = std::make_shared<std::string>("q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj");
  auto tokens = std::make_shared<int64_t>(1024);
  info->add_option("--preset", *preset, "tiny, small, qwen2.5-0.5b, qwen2.5-1.5b, qwen2.5-7b");
  info->add_option("--checkpoint", *checkpoint, "HF checkpoint directory (config.json + safetensors)");
  info->add_option("--dtype", *dtype, "Weight dtype for the arithmetic: bf16, f16, f32 (default: config's torch_dtype)");
  info->add_option("--lora-rank", *rank, "LoRA rank for the adapter figures (default 16)")->check(CLI::Range(1, 65536));
  info->add_option("--lora-alpha", *alpha, "LoRA alpha (default 32)");
  info->add_option("--lora-targets", *targets, "Comma-separated target modules (default: all seven linear layers)");
  info->add_option("--tokens", *tokens, "Sequence length for the KV cache and activation figures (default 1024)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  info->callback([=] {
    std::string label;
    const Qwen2Config c = config_from(*preset, *checkpoint, &label);
    const DType d = dtype->empty() ? c.torch_dtype : parse_dtype(*dtype);
    LoraConfig lora;
    lora.r = *rank;
    lora.alpha = *alpha;
    lora.target_modules = split(*targets, ',');
    const int64_t lora_params = lora_parameters(c, lora);
    const MemoryEstimate e = estimate_memory(c, d, lora_params, *tokens);

    std::printf("model: %s\n", label.c_str());
    std::printf("  Qwen2ForCausalLM: %lld layers, hidden %lld, MLP %lld, %lld query heads / %lld KV heads of %lld dims, "
                "vocabulary %lld, %s, rope_theta %g, rms_norm_eps %g\n",
                (long long)c.num_hidden_layers, (long long)c.hidden_size, (long long)c.intermediate_size,
                (long long)c.num_attention_heads, (long long)c.num_key_value_heads, (long long)c.head_dim(),
                (long long)c.vocab_size, c.tie_word_embeddings ? "tied embeddings" : "untied lm_head", c.rope_theta,
                c.rms_norm_eps);
    if (!c.ignored_keys.empty()) {
      std::string keys;
      for (const auto& k : c.ignored_keys) keys += (keys.empty() ? "" : ", ") + k;
      std::printf("  config.json keys ignored (they do not change the forward pass): %s\n", keys.c_str());
    }
    if (!checkpoint->empty()) describe_checkpoint_files(*checkpoint);

    const int64_t H = c.hidden_size, I = c.intermediate_size, K = c.num_key_value_heads * c.head_dim();
    std::printf("tensors (N = 0..%lld):\n", (long long)c.num_hidden_layers - 1);
    auto row = [](const std::string& name, const std::string& shape) {
      std::printf("  %-50s %s\n", name.c_str(), shape.c_str());
    };
    row("model.embed_tokens.weight", shape_str({c.vocab_size, H}));
    row("model.layers.N.self_attn.q_proj.weight / .bias", shape_str({H, H}) + " / " + shape_str({H}));
    row("model.layers.N.self_attn.k_proj.weight / .bias", shape_str({K, H}) + " / " + shape_str({K}));
    row("model.layers.N.self_attn.v_proj.weight / .bias", shape_str({K, H}) + " / " + shape_str({K}));
    row("model.layers.N.self_attn.o_proj.weight", shape_str({H, H}));
    row("model.layers.N.mlp.gate_proj.weight", shape_str({I, H}));
    row("model.layers.N.mlp.up_proj.weight", shape_str({I, H}));
    row("model.layers.N.mlp.down_proj.weight", shape_str({H, I}));
    row("model.layers.N.input_layernorm.weight", shape_str({H}));
    row("model.layers.N.post_attention_layernorm.weight", shape_str({H}));
    row("model.norm.weight", shape_str({H}));
    if (!c.tie_word_embeddings) row("lm_head.weight", shape_str({c.vocab_size, H}));
    std::printf("parameters: embedding %s + %lld layers x %s + final norm %lld%s = %s\n",
                millions(c.embedding_parameters()).c_str(), (long long)c.num_hidden_layers,
                millions(c.layer_parameters()).c_str(), (long long)H,
                c.tie_word_embeddings ? " (lm_head tied to the embedding)" : (" + lm_head " + millions(c.embedding_parameters())).c_str(),
                millions(c.num_parameters()).c_str());

    const int64_t T = *tokens;
    std::printf("memory, weights in %s, sequences of %lld tokens:\n", dtype_name(d), (long long)T);
    std::printf("  %-38s %s\n", "weights", human_bytes(e.weight_bytes).c_str());
    std::printf("  %-38s %s per token; %lld tokens: %s\n", "KV cache", human_bytes(e.kv_bytes_per_token).c_str(),
                (long long)T, human_bytes(e.kv_bytes_per_token * T).c_str());
    std::printf("  %-38s %s parameters, %s (f32)\n",
                ("LoRA r=" + std::to_string(lora.r) + ", " + std::to_string(lora.target_modules.size()) + " target modules").c_str(),
                millions(e.lora_parameters).c_str(), human_bytes(e.lora_bytes).c_str());
    std::printf("  %-38s %s gradients + %s Adam states (f32)\n", "LoRA optimizer", human_bytes(e.lora_grad_bytes).c_str(),
                human_bytes(e.lora_adam_bytes).c_str());
    std::printf("  %-38s %s per token; %lld tokens: %s (estimate, no activation checkpointing)\n",
                "activations kept for backward", human_bytes(e.activation_bytes_per_token).c_str(), (long long)T,
                human_bytes(e.activation_bytes_per_token * T).c_str());
    std::printf("  %-38s %s gradients (%s) + %s Adam states (f32%s)\n", "full fine-tuning, mixed precision",
                human_bytes(e.full_grad_bytes).c_str(), dtype_name(d), human_bytes(e.full_adam_bytes).c_str(),
                d == DType::kF32 ? " moments" : " master weights + moments");
    const MachineMemory mm = machine_memory();
    std::printf("this machine (%s = %.1f GiB RAM, %s available now):\n", human_bytes(mm.total_bytes).c_str(),
                static_cast<double>(mm.total_bytes) / (1024.0 * 1024 * 1024), human_bytes(mm.available_bytes).c_str());
    print_fit("inference (weights + KV cache)", e.inference_bytes(), mm.available_bytes, mm.total_bytes);
    print_fit("LoRA training step", e.lora_training_bytes(), mm.available_bytes, mm.total_bytes);
    print_fit("full fine-tuning step", e.full_training_bytes(), mm.available_bytes, mm.total_bytes);
    std::printf("one GPU (same arithmetic, before framework overhead):\n");
    print_gpu("inference (weights + KV cache)", e.inference_bytes());
    print_gpu("LoRA training step", e.lora_training_bytes());
    print_gpu("full fine-tuning step", e.full_training_bytes());
    std::printf("parameters: %lld\n", static_cast<long long>(c.num_parameters()));
  });
}

// ---- model logits ----
void setup_model_logits(CLI::App* model) {
  auto* logits = model->add_subcommand("logits", "Logits of every position of a token sequence (F32 [T, vocab] safetensors)");
  auto checkpoint = std::make_shared<std::string>();
  auto token_ids = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto dtype = std::make_shared<std::string>("f32");
  auto device = std::make_shared<std::string>("cpu");
  logits->add_option("--checkpoint", *checkpoint, "HF checkpoint directory")->required();
  logits->add_option("--token-ids", *token_ids, "Comma-separated token ids, e.g. 1,2,3 (no tokens are added)")->required();
  logits->add_option("--out", *out, "Output .safetensors file with one F32 tensor 'logits' [T, vocab]")->required();
  logits->add_option("--dtype", *dtype, "Compute dtype: f32 (default), bf16, f16 (CUDA only)");
  logits->add_option("--device", *device, "cpu (default) or cuda[:N]");
  logits->callback([=] {
    const std::vector<int64_t> ids = parse_token_ids(*token_ids);
    LoadOptions opt;
    opt.dtype = parse_dtype(*dtype);
    opt.device = parse_device(*device);
    Qwen2ForCausalLM m = load_hf_checkpoint(*checkpoint, opt);
    const int64_t max_pos = m->config().max_position_embeddings;
    if (static_cast<int64_t>(ids.size()) > max_pos)
      log_warn("model logits: ", ids.size(), " token ids exceed max_position_embeddings ", max_pos, " of ",
               *checkpoint, "/config.json: positions ", max_pos, " and later were never trained (the rotary "
               "embedding extrapolates), so their logits are unreliable");
    m->eval();
    torch::InferenceMode guard;
    const torch::Tensor input = torch::tensor(ids, torch::kInt64).unsqueeze(0);
    const torch::Tensor l = m->forward(input)[0].to(torch::kCPU, torch::kFloat32).contiguous();
    safetensors::File f;
    f.metadata["checkpoint"] = *checkpoint;
    f.metadata["dtype"] = *dtype;
    f.tensors["logits"] = safetensors::Tensor::from_f32({l.size(0), l.size(1)}, l.data_ptr<float>(),
                                                         static_cast<std::size_t>(l.numel()));
    safetensors::write_file(*out, f);
    std::printf("wrote %s: logits [%lld, %lld]\n", out->c_str(), (long long)l.size(0), (long long)l.size(1));
  });
}

// ---- model init ----
void setup_model_init(CLI::App* model) {
  auto* init = model->add_subcommand("init", "Write a randomly initialized HF checkpoint of a preset");
  auto preset = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto dtype = std::make_shared<std::string>("bf16");
  auto seed = std::make_shared<uint64_t>(1);
  auto std_dev = std::make_shared<double>(0.0);
  auto shard_mb = std::make_shared<uint64_t>(0);
  auto overwrite = std::make_shared<bool>(false);
  init->add_option("--preset", *preset, "Model preset")->required();
  init->add_option("--out", *out, "Checkpoint directory to create")->required();
  init->add_option("--dtype", *dtype, "Stored dtype: bf16 (default), f16, f32");
  init->add_option("--seed", *seed, "torch seed (default 1)");
  init->add_option("--std", *std_dev, "Std of the normal init (default: the config's initializer_range, 0.02)");
  init->add_option("--shard-mb", *shard_mb, "Shard the weights into files of at most this many MB (default: one file)");
  init->add_flag("--overwrite", *overwrite, "Replace an existing directory");
  init->callback([=] {
    if (fs::exists(*out) && !*overwrite)
      fail("model init: '", *out, "' already exists; pass --overwrite to replace it");
    Qwen2Config c = Qwen2Config::preset(*preset);
    if (*std_dev > 0) c.initializer_range = *std_dev;
    const DType stored = parse_dtype(*dtype);
    c.torch_dtype = stored;
    torch::manual_seed(*seed);
    const auto t0 = std::chrono::steady_clock::now();
    // f16 has no CPU kernels for the model, but initialization and saving need none: build in f32.
    Qwen2ForCausalLM m(c, stored == DType::kF16 ? DType::kF32 : stored);
    const double init_s = seconds_since(t0);
    SaveOptions opt;
    opt.dtype = stored;
    opt.max_shard_bytes = *shard_mb * 1000 * 1000;
    opt.overwrite = *overwrite;
    const auto t1 = std::chrono::steady_clock::now();
    save_hf_checkpoint(m, *out, opt);
    std::printf("wrote %s: %s, %lld parameters in %s (%s), init %.1f s, save %.1f s\n", out->c_str(), preset->c_str(),
                (long long)c.num_parameters(), dtype_name(stored), human_bytes(c.num_parameters() * dtype_bytes(stored)).c_str(),
                init_s, seconds_since(t1));
  });
}

void setup_model(CLI::App& app) {
  auto* model = group(app, "model", "The Qwen2-family model: memory arithmetic, logits, random checkpoints");
  setup_model_info(model);
  setup_model_logits(model);
  setup_model_init(model);
}

CONDUCTOR_COMMAND(setup_model);

}  // namespace
}  // namespace conductor::cli
