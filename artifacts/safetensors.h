// safetensors reader and writer, torch-free, to the published format
// (https://github.com/huggingface/safetensors, "Format" section):
//
//   8 bytes   N, the header size, an unsigned little-endian 64-bit integer
//   N bytes   a UTF-8 JSON object: {"NAME": {"dtype": "F32", "shape": [2, 3], "data_offsets": [B, E]},
//             ..., "__metadata__": {"key": "value", ...}}; it starts with '{' and may be padded at
//             the end with spaces (0x20)
//   rest      the byte buffer; data_offsets are relative to its start, [B, E) half-open
//
// The reader enforces what the reference implementation enforces and a little more: the header is
// at most 100 MB (kMaxHeaderBytes) and lies inside the file; it is valid UTF-8 JSON without
// duplicate keys at any level; every tensor entry has exactly dtype/shape/data_offsets with a known
// dtype; E - B equals (product of shape) x (dtype size); offsets lie inside the buffer; and the
// tensors tile the buffer exactly (no overlap, no gap, nothing after the last tensor), which is what
// rules out polyglot files. __metadata__ maps strings to strings. Every failure is a
// conductor::Error that names the file and the tensor or offset at fault.
//
// The writer pads the header with spaces to a multiple of 8 bytes (so every tensor in an 8-byte
// aligned file mapping stays aligned for its dtype) and lays tensors out by decreasing dtype size,
// then by name, as the reference writer does. Tensor data is stored little-endian (the format's
// byte order); this code supports little-endian hosts only and says so at compile time.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace conductor::safetensors {

constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;  // the reference implementation's limit

enum class DType { kBool, kU8, kI8, kF8E5M2, kF8E4M3, kI16, kU16, kF16, kBF16, kI32, kU32, kF32, kF64, kI64, kU64 };

// "F32", "BF16", ... as spelled in the header.
const char* dtype_name(DType d);
// Throws conductor::Error listing the known dtypes.
DType parse_dtype(const std::string& s);
std::size_t dtype_size(DType d);

struct Tensor {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // [] is a scalar (one element); a 0 dimension is an empty tensor
  std::string data;            // raw little-endian bytes, size = numel * dtype_size

  int64_t numel() const;
  // Copies out as floats; only for F32 (throws for another dtype, naming it).
  std::vector<float> to_f32(const std::string& name = "tensor") const;
  static Tensor from_f32(const std::vector<int64_t>& shape, const std::vector<float>& values);
  static Tensor from_f32(const std::vector<int64_t>& shape, const float* values, std::size_t n);
};

struct File {
  std::map<std::string, std::string> metadata;  // __metadata__
  std::map<std::string, Tensor> tensors;        // by name

  // Throws conductor::Error naming the missing tensor and listing the names present.
  const Tensor& at(const std::string& name) const;
  bool has(const std::string& name) const { return tensors.count(name) > 0; }
};

// The whole file as bytes. Throws conductor::Error for an invalid tensor (size not matching its
// dtype x shape, negative dimension) or a name that collides with "__metadata__".
std::string serialize(const File& file);
// Parses bytes; `source` (a path) prefixes every error message.
File parse(const std::string& bytes, const std::string& source = "<bytes>");

// Writes atomically (temporary file, then rename).
void write_file(const std::string& path, const File& file);
File read_file(const std::string& path);

}  // namespace conductor::safetensors
