#include "llm/hf_checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "core/atomic_dir.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_util.h"

namespace conductor::llm {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";
constexpr uint64_t kChunkBytes = 16ull << 20;  // copy granularity: the most of a mapping resident at once

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

torch::Dtype torch_dtype_of(safetensors::DType d, const std::string& what) {
  switch (d) {
    case safetensors::DType::kF32: return torch::kFloat32;
    case safetensors::DType::kBF16: return torch::kBFloat16;
    case safetensors::DType::kF16: return torch::kFloat16;
    default:
      fail(what, ": dtype ", safetensors::dtype_name(d), " is not supported (BF16, F16, F32 only)");
  }
}

safetensors::DType safetensors_dtype_of(torch::Dtype d) {
  if (d == torch::kFloat32) return safetensors::DType::kF32;
  if (d == torch::kBFloat16) return safetensors::DType::kBF16;
  if (d == torch::kFloat16) return safetensors::DType::kF16;
  fail("cannot write torch dtype ", c10::toString(d), " (f32, bf16, f16 only)");
}

// Where each tensor lives: name -> shard file name (relative to the checkpoint directory).
struct WeightMap {
  std::string source;  // the index file, or the single file, for messages
  std::map<std::string, std::string> shard_of;
  std::vector<std::string> shards;  // distinct, sorted
};

WeightMap read_weight_map(const std::string& dir) {
  WeightMap wm;
  if (fs::exists(fs::path(dir) / kSingleFile)) {
    wm.source = (fs::path(dir) / kSingleFile).string();
    wm.shards = {kSingleFile};
    return wm;  // names are filled from the file's header
  }
  const std::string index = (fs::path(dir) / kIndexFile).string();
  if (!fs::exists(index))
    fail(dir, ": no weights: neither ", kSingleFile, " nor ", kIndexFile, " is present");
  wm.source = index;
  const json j = parse_json(read_file(index), index);
  if (!j.is_object() || !j.contains("weight_map") || !j.at("weight_map").is_object())
    fail(index, ": expected an object with a \"weight_map\" object {tensor name: shard file}");
  std::set<std::string> shards;
  for (const auto& [name, file] : j.at("weight_map").items()) {
    if (!file.is_string()) fail(index, ": weight_map['", name, "'] must be a file name, got ", file.dump());
    const std::string f = file.get<std::string>();
    if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..")
      fail(index, ": weight_map['", name, "'] = '", f, "' is not a file name in the checkpoint directory");
    wm.shard_of[name] = f;
    shards.insert(f);
  }
  if (wm.shard_of.empty()) fail(index, ": weight_map is empty");
  wm.shards.assign(shards.begin(), shards.end());
  return wm;
}

// Copies `count` elements of `src_dtype` at `src` into dst_flat[offset, offset + count).
void copy_chunk(const torch::Tensor& dst_flat, int64_t offset, const char* src, int64_t count, torch::Dtype src_dtype,
                std::size_t elem) {
  const auto cpu = torch::TensorOptions().dtype(src_dtype);
  torch::Tensor source;
  if (reinterpret_cast<uintptr_t>(src) % elem == 0) {
    source = torch::from_blob(const_cast<char*>(src), {count}, cpu);  // read only: copy_ never writes it
  } else {  // a file whose header is not padded to the element size: stage through an aligned buffer
    source = torch::empty({count}, cpu);
    std::memcpy(source.data_ptr(), src, static_cast<std::size_t>(count) * elem);
  }
  dst_flat.narrow(0, offset, count).copy_(source);
}

}  // namespace

void copy_tensor(const torch::Tensor& dst, const safetensors::MappedFile& file, const std::string& name) {
  const std::string what = file.path() + ": tensor '" + name + "'";
  const safetensors::TensorView& view = file.at(name);
  const torch::Dtype src_dtype = torch_dtype_of(view.dtype, what);
  const std::vector<int64_t> want(dst.sizes().begin(), dst.sizes().end());
  if (view.shape != want) fail(what, ": shape ", shape_str(view.shape), ", expected ", shape_str(want));
  CONDUCTOR_CHECK(dst.is_contiguous(), "parameter '", name, "' is not contiguous");
  torch::NoGradGuard no_grad;
  torch::Tensor flat = dst.view({-1});
  const std::size_t elem = safetensors::dtype_size(view.dtype);
  const int64_t n = view.numel(), per_chunk = static_cast<int64_t>(kChunkBytes / elem);
  for (int64_t off = 0; off < n; off += per_chunk) {
    const int64_t count = std::min(per_chunk, n - off);
    const char* src = view.data + static_cast<uint64_t>(off) * elem;
    copy_chunk(flat, off, src, count, src_dtype, elem);
    file.release(src, static_cast<uint64_t>(count) * elem);
  }
}

namespace {
// A tensor to write: the parameter, or the weight of a linear layer with its adapter folded in,
// produced only when its turn comes (so at most one merged weight exists at a time).
struct Source {
  std::string name;
  torch::Tensor param;
  const LinearImpl* linear = nullptr;
};

void write_sources(const std::string& path, const std::vector<Source>& sources, std::optional<DType> dtype,
                   const std::map<std::string, std::string>& metadata) {
  std::vector<safetensors::TensorSpec> specs;
  std::map<std::string, const Source*> by_name;
  for (const auto& s : sources) {
    const torch::Dtype out = dtype ? to_torch(*dtype) : s.param.scalar_type();
    specs.push_back({s.name, safetensors_dtype_of(out), std::vector<int64_t>(s.param.sizes().begin(), s.param.sizes().end())});
    by_name[s.name] = &s;
  }
  safetensors::StreamWriter writer(path, metadata, std::move(specs));
  torch::NoGradGuard no_grad;
  for (const auto& spec : writer.layout()) {
    const Source& s = *by_name.at(spec.name);
    const torch::Tensor t = s.linear != nullptr ? s.linear->merged_weight() : s.param;
    const torch::Dtype out = dtype ? to_torch(*dtype) : t.scalar_type();
    // One tensor at a time on the CPU, contiguous, in the output dtype (no copy when it already is).
    const torch::Tensor host = t.detach().to(torch::kCPU, out).contiguous();
    writer.write(spec.name, host.data_ptr(), static_cast<uint64_t>(host.nbytes()));
  }
  writer.commit();
}
}  // namespace

void write_tensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                   std::optional<DType> dtype, const std::map<std::string, std::string>& metadata) {
  std::vector<Source> sources;
  for (const auto& [name, t] : tensors) sources.push_back({name, t, nullptr});
  write_sources(path, sources, dtype, metadata);
}

Qwen2Config read_hf_config(const std::string& dir) {
  if (!fs::is_directory(dir)) fail("checkpoint '", dir, "' is not a directory");
  const std::string path = (fs::path(dir) / "config.json").string();
  if (!fs::exists(path)) fail(dir, ": no config.json (an HF checkpoint directory holds config.json and the weights)");
  return Qwen2Config::load(path);
}

Qwen2ForCausalLM load_hf_checkpoint(const std::string& dir, const LoadOptions& options) {
  const Qwen2Config config = read_hf_config(dir);
  Qwen2ForCausalLM model(config, options.dtype, options.device, Init::kUninitialized);
  load_hf_weights(model, dir);
  return model;
}

CheckpointFiles open_checkpoint_files(const std::string& dir) {
  WeightMap wm = read_weight_map(dir);
  const bool single = wm.shard_of.empty();
  CheckpointFiles cf;
  cf.source = wm.source;

  // Map every file (a missing shard is named with a tensor the index puts in it).
  for (const auto& shard : wm.shards) {
    const std::string path = (fs::path(dir) / shard).string();
    if (!fs::exists(path)) {
      std::string example;
      int64_t count = 0;
      for (const auto& [name, f] : wm.shard_of)
        if (f == shard && count++ == 0) example = name;
      fail(wm.source, ": shard '", shard, "' is missing (it should hold ", count, " tensor(s), e.g. '", example, "')");
    }
    cf.files[shard] = std::make_unique<safetensors::MappedFile>(path);
  }
  if (single)
    for (const auto& name : cf.files.begin()->second->names()) wm.shard_of[name] = kSingleFile;

  // The index and the shards agree.
  for (const auto& [name, shard] : wm.shard_of)
    if (!cf.files.at(shard)->has(name))
      fail(wm.source, ": names tensor '", name, "' in shard '", shard, "', which has no such tensor");
  for (const auto& [shard, file] : cf.files)
    for (const auto& name : file->names()) {
      auto it = wm.shard_of.find(name);
      if (it == wm.shard_of.end())
        fail(file->path(), ": tensor '", name, "' is not listed in ", kIndexFile);
      if (it->second != shard)
        fail(file->path(), ": tensor '", name, "' is not listed in ", kIndexFile, " for this shard (the index puts it in '",
             it->second, "')");
    }
  cf.shard_of = std::move(wm.shard_of);
  return cf;
}

const safetensors::MappedFile& CheckpointFiles::file_of(const std::string& name) const {
  auto it = shard_of.find(name);
  if (it == shard_of.end()) fail(source, ": tensor '", name, "' is missing");
  return *files.at(it->second);
}

void copy_checkpoint_tensors(const CheckpointFiles& cf, const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  // Every tensor is present with the right shape and a supported dtype before anything is copied
  // (checked in the caller's order, so the first bad tensor of the model is the one named).
  for (const auto& [name, param] : tensors) {
    const auto& file = cf.file_of(name);
    const auto& view = file.at(name);
    const std::string what = file.path() + ": tensor '" + name + "'";
    torch_dtype_of(view.dtype, what);
    const std::vector<int64_t> want(param.sizes().begin(), param.sizes().end());
    if (view.shape != want) fail(what, ": shape ", shape_str(view.shape), ", expected ", shape_str(want));
  }
  // Copy, file by file in layout order (sequential reads).
  const std::map<std::string, torch::Tensor> by_name(tensors.begin(), tensors.end());
  for (const auto& [shard, file] : cf.files) {
    std::vector<std::pair<const char*, std::string>> order;
    for (const auto& [name, view] : file->tensors())
      if (by_name.count(name)) order.emplace_back(view.data, name);
    std::sort(order.begin(), order.end());
    for (const auto& item : order) copy_tensor(by_name.at(item.second), *file, item.second);
  }
}

void load_hf_weights(Qwen2ForCausalLM& model, const std::string& dir) {
  const CheckpointFiles cf = open_checkpoint_files(dir);

  // The checkpoint holds exactly the model's tensors.
  auto weights = hf_named_weights(model);
  std::set<std::string> expected;
  for (const auto& kv : weights) expected.insert(kv.first);
  const Qwen2Config& config = model->config();
  for (const auto& [name, shard] : cf.shard_of) {
    if (expected.count(name)) continue;
    if (name == "lm_head.weight" && config.tie_word_embeddings)
      fail(cf.files.at(shard)->path(), ": unexpected tensor 'lm_head.weight': config.json says tie_word_embeddings = true "
           "(the head is the embedding); set it to false or drop the tensor");
    fail(cf.files.at(shard)->path(), ": unexpected tensor '", name, "' (not a parameter of Qwen2ForCausalLM with this config.json)");
  }
  for (const auto& [name, param] : weights)
    if (!cf.shard_of.count(name))
      fail(cf.source, ": tensor '", name, "' is missing",
           name == "lm_head.weight" ? " (config.json says tie_word_embeddings = false)" : "");
  copy_checkpoint_tensors(cf, weights);
}

void save_hf_checkpoint(Qwen2ForCausalLM& model, const std::string& dir, const SaveOptions& options) {
  const DType out_dtype = options.dtype.value_or(model->dtype());
  // The weights to write, by HF name, with adapters folded in (computed one at a time when written).
  std::map<std::string, LinearImpl*> linear_of;
  for (const auto& item : model->named_modules("", false))
    if (auto* lin = item.value()->as<LinearImpl>()) linear_of[item.key() + ".weight"] = lin;
  std::vector<std::pair<std::string, torch::Tensor>> weights;
  for (auto& [name, param] : hf_named_weights(model)) weights.emplace_back(name, param);

  // Shards in model order.
  std::vector<std::vector<std::size_t>> shards(1);
  uint64_t in_shard = 0, total = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const uint64_t bytes = static_cast<uint64_t>(weights[i].second.numel()) * static_cast<uint64_t>(dtype_bytes(out_dtype));
    if (options.max_shard_bytes > 0 && in_shard > 0 && in_shard + bytes > options.max_shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(i);
    in_shard += bytes;
    total += bytes;
  }

  Qwen2Config config = model->config();
  config.torch_dtype = out_dtype;
  AtomicDirectory out(dir, options.overwrite);
  write_json_atomic(out.path() + "/config.json", config.to_json());
  json weight_map = json::object();
  for (std::size_t s = 0; s < shards.size(); ++s) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
    const std::string file = options.max_shard_bytes > 0 ? name : kSingleFile;
    std::vector<Source> part;
    for (std::size_t i : shards[s]) {
      const auto& [tensor_name, param] = weights[i];
      auto lin = linear_of.find(tensor_name);
      part.push_back({tensor_name, param, lin != linear_of.end() ? lin->second : nullptr});
      weight_map[tensor_name] = file;
    }
    write_sources(out.path() + "/" + file, part, out_dtype, {{"format", "pt"}});
  }
  if (options.max_shard_bytes > 0)
    write_json_atomic(out.path() + "/" + kIndexFile,
                      json{{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}});
  out.commit();
}

}  // namespace conductor::llm
