// Hugging Face checkpoint directories of Qwen2ForCausalLM: config.json plus either model.safetensors
// or shards listed in model.safetensors.index.json ({"metadata": {"total_size": N},
// "weight_map": {tensor name: shard file}}). Tensors by HF name (llm/qwen2.h), in BF16, F16 or F32,
// converted to the model's dtype while copying.
//
// Loading maps every file (artifacts/safetensors.h MappedFile), validates all of them before copying
// anything, then copies each tensor once, in chunks, straight from the mapping into its parameter,
// dropping the mapped pages after each chunk: the process never holds the weights twice (peak resident
// memory about the model's weights plus one 16 MB chunk). When both model.safetensors and an index
// exist, model.safetensors is read (transformers' order). Every malformed input is a conductor::Error
// naming the file and the tensor: no config.json, config.json of another architecture or missing a
// key, no weights file, a missing shard, an index naming a tensor its shard lacks, a shard tensor the
// index does not list, a missing or extra tensor, a wrong shape, an unsupported dtype, a corrupt
// safetensors header.
//
// Saving writes config.json (architectures ["Qwen2ForCausalLM"]), the weights under HF names with
// any unmerged LoRA adapters folded in (the model itself is unchanged), optionally sharded with an
// index, into a temporary directory renamed into place. safetensors metadata {"format": "pt"} as
// transformers expects.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "artifacts/safetensors.h"
#include "llm/qwen2.h"

namespace conductor::llm {

// DIR/config.json, parsed and checked (Qwen2Config::load).
Qwen2Config read_hf_config(const std::string& dir);

struct LoadOptions {
  DType dtype = DType::kF32;           // the model's dtype (the checkpoint's tensors are converted)
  torch::Device device = torch::kCPU;  // parameters are created there and filled from the mapping
};

// Builds the model from DIR/config.json and loads its weights.
Qwen2ForCausalLM load_hf_checkpoint(const std::string& dir, const LoadOptions& options = {});
// Loads DIR's weights into an existing model of the same shapes (no adapters are read or touched).
void load_hf_weights(Qwen2ForCausalLM& model, const std::string& dir);

struct SaveOptions {
  std::optional<DType> dtype;    // dtype of the written tensors; default: the model's
  uint64_t max_shard_bytes = 0;  // 0: one model.safetensors; else shards of at most this many bytes
                                 // of tensor data (a larger tensor gets a shard of its own)
  bool overwrite = false;        // replace an existing directory
};
void save_hf_checkpoint(Qwen2ForCausalLM& model, const std::string& dir, const SaveOptions& options = {});

// ---- Helpers shared with LoRA adapter files and other architectures (llm/bert.h) ----

// The weights files of a checkpoint directory (model.safetensors, or the shards of
// model.safetensors.index.json), mapped, with the index and the shards checked against each other.
struct CheckpointFiles {
  std::string source;  // the index, or model.safetensors: what messages about a missing tensor name
  std::map<std::string, std::unique_ptr<safetensors::MappedFile>> files;  // by file name
  std::map<std::string, std::string> shard_of;                            // tensor name -> file name
  // The file holding `name`; throws conductor::Error naming `source` when none does.
  const safetensors::MappedFile& file_of(const std::string& name) const;
};
CheckpointFiles open_checkpoint_files(const std::string& dir);
// Copies the named tensors (checkpoint name -> destination parameter) out of the files, after checking,
// in the given order, that every one is present with the destination's shape and a BF16/F16/F32
// dtype; file by file in layout order. Tensors of the files not named are not read.
void copy_checkpoint_tensors(const CheckpointFiles& files, const std::vector<std::pair<std::string, torch::Tensor>>& tensors);

// Copies tensor `name` of a mapped file into `dst` (shape must match, dtype BF16/F16/F32, converted),
// chunk by chunk, releasing the mapped pages behind it. Errors name the file and the tensor.
void copy_tensor(const torch::Tensor& dst, const safetensors::MappedFile& file, const std::string& name);
// Writes named tensors to one safetensors file (atomic), converting to `dtype` when given, one tensor
// at a time (no second copy of the whole set).
void write_tensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                   std::optional<DType> dtype, const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace conductor::llm
