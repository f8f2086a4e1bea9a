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
#include <cstdio>
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

// ---- Large files: streaming writer and memory-mapped reader ----
// For checkpoints of several GB, where holding the whole file in a std::string (File, serialize,
// parse) would double the memory.

// Writes a file tensor by tensor: the header first (from names, dtypes and shapes), then each
// tensor's bytes in layout order, so the caller can produce (convert, copy off a device) one tensor at
// a time. Same bytes as write_file(path, File{...}) with the same tensors. Atomic: a temporary file
// renamed into place by commit(); destroyed without commit(), the temporary file is removed.
struct TensorSpec {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
};

class StreamWriter {
 public:
  // Throws conductor::Error as serialize() does for an invalid name or shape, and for a name given twice.
  StreamWriter(const std::string& path, const std::map<std::string, std::string>& metadata,
               std::vector<TensorSpec> tensors);
  ~StreamWriter();
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;

  // The tensors in the order write() must receive them (the file's layout order).
  const std::vector<TensorSpec>& layout() const { return layout_; }
  // The next tensor's bytes: `name` must be layout()[k] for the k-th call and `nbytes` its size.
  void write(const std::string& name, const void* data, uint64_t nbytes);
  // After every tensor was written: flush, fsync, rename into place.
  void commit();

 private:
  std::string path_, temp_path_;
  std::vector<TensorSpec> layout_;
  std::size_t next_ = 0;
  std::FILE* file_ = nullptr;
  bool committed_ = false;
};

// A tensor the caller owns: `nbytes` bytes at `data` (little-endian, dtype x shape).
struct TensorRef {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  uint64_t nbytes = 0;
};

// StreamWriter over caller-owned buffers: the same bytes as write_file(path, File{metadata, tensors}).
void write_file(const std::string& path, const std::map<std::string, std::string>& metadata,
                const std::vector<TensorRef>& tensors);

// A view into a MappedFile: valid while the MappedFile lives.
struct TensorView {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const char* data = nullptr;
  uint64_t nbytes = 0;
  int64_t numel() const;
};

// Maps a file read-only and validates its header once, with every check parse() makes (same
// messages); then hands out views by tensor name without copying. Pages are read from disk when
// first touched; release() drops a view's pages from this process's resident memory once it has been
// copied elsewhere, so that loading a checkpoint never holds its weights twice.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws conductor::Error naming the path
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  std::vector<std::string> names() const;  // sorted
  bool has(const std::string& name) const { return tensors_.count(name) > 0; }
  // Throws conductor::Error naming the file and the missing tensor, listing the names present.
  const TensorView& at(const std::string& name) const;
  // madvise(MADV_DONTNEED) on the pages holding [begin, begin + nbytes) (which must lie in this
  // mapping): they leave the resident set; reading them again faults them back in from the file.
  void release(const char* begin, uint64_t nbytes) const;

 private:
  void unmap();
  std::string path_;
  std::map<std::string, std::string> metadata_;
  std::map<std::string, TensorView> tensors_;
  const char* base_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace conductor::safetensors
