#include "artifacts/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <cstdio>
#include <cstring>
#include <set>
#include <vector>

#include "core/atomic_dir.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_util.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "artifacts/safetensors.cpp copies tensor bytes as-is: it supports little-endian hosts only"
#endif

namespace conductor::safetensors {

namespace {

struct DTypeInfo {
  DType dtype;
  const char* name;
  std::size_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::kBool, "BOOL", 1}, {DType::kU8, "U8", 1},     {DType::kI8, "I8", 1},
    {DType::kF8E5M2, "F8_E5M2", 1}, {DType::kF8E4M3, "F8_E4M3", 1}, {DType::kI16, "I16", 2},
    {DType::kU16, "U16", 2},   {DType::kF16, "F16", 2},   {DType::kBF16, "BF16", 2},
    {DType::kI32, "I32", 4},   {DType::kU32, "U32", 4},   {DType::kF32, "F32", 4},
    {DType::kF64, "F64", 8},   {DType::kI64, "I64", 8},   {DType::kU64, "U64", 8},
};

const DTypeInfo& info(DType d) {
  for (const auto& i : kDTypes)
    if (i.dtype == d) return i;
  CONDUCTOR_CHECK(false, "unknown dtype enum ", static_cast<int>(d));
}

// numel with overflow detection; `what` names the tensor in errors.
uint64_t checked_numel(const std::vector<int64_t>& shape, const std::string& what) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) fail(what, ": negative dimension ", d, " in shape");
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n))
      fail(what, ": shape has more elements than fit in 64 bits");
  }
  return n;
}

uint64_t checked_nbytes(const std::vector<int64_t>& shape, DType d, const std::string& what) {
  uint64_t n = checked_numel(shape, what), bytes = 0;
  if (__builtin_mul_overflow(n, static_cast<uint64_t>(info(d).size), &bytes))
    fail(what, ": tensor size in bytes does not fit in 64 bits");
  return bytes;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// A non-negative JSON integer (not 1.0, not -1, not "1").
uint64_t as_index(const json& v, const std::string& what) {
  if (!v.is_number_integer()) fail(what, ": expected a non-negative integer, got ", v.dump());
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  const int64_t s = v.get<int64_t>();
  if (s < 0) fail(what, ": expected a non-negative integer, got ", s);
  return static_cast<uint64_t>(s);
}

// Parses the header rejecting duplicate keys at any depth (nlohmann keeps the last one silently).
json parse_header_json(const std::string& text, const std::string& source) {
  std::vector<std::set<std::string>> keys_stack;
  std::string duplicate;
  auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        keys_stack.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys_stack.empty()) keys_stack.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys_stack.empty() && !keys_stack.back().insert(parsed.get<std::string>()).second &&
            duplicate.empty())
          duplicate = parsed.get<std::string>();
        break;
      default:
        break;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(text, callback);
  } catch (const json::exception& e) {
    fail(source, ": safetensors header is not valid JSON: ", e.what());
  }
  if (!duplicate.empty()) fail(source, ": safetensors header has the key '", duplicate, "' twice");
  return j;
}

}  // namespace

const char* dtype_name(DType d) { return info(d).name; }
std::size_t dtype_size(DType d) { return info(d).size; }

DType parse_dtype(const std::string& s) {
  std::string known;
  for (const auto& i : kDTypes) {
    if (s == i.name) return i.dtype;
    known += (known.empty() ? "" : ", ") + std::string(i.name);
  }
  fail("unknown safetensors dtype '", s, "' (known: ", known, ")");
}

int64_t Tensor::numel() const { return static_cast<int64_t>(checked_numel(shape, "tensor")); }

std::vector<float> Tensor::to_f32(const std::string& name) const {
  if (dtype != DType::kF32) fail("tensor '", name, "': expected dtype F32, got ", dtype_name(dtype));
  const uint64_t bytes = checked_nbytes(shape, dtype, "tensor '" + name + "'");
  if (bytes != data.size())
    fail("tensor '", name, "': holds ", data.size(), " bytes, shape ", shape_str(shape), " needs ", bytes);
  std::vector<float> out(bytes / sizeof(float));
  if (bytes) std::memcpy(out.data(), data.data(), bytes);
  return out;
}

Tensor Tensor::from_f32(const std::vector<int64_t>& shape, const float* values, std::size_t n) {
  Tensor t;
  t.dtype = DType::kF32;
  t.shape = shape;
  const uint64_t want = checked_numel(shape, "from_f32");
  if (want != n) fail("from_f32: shape ", shape_str(shape), " has ", want, " elements, got ", n, " values");
  t.data.assign(reinterpret_cast<const char*>(values), n * sizeof(float));
  return t;
}

Tensor Tensor::from_f32(const std::vector<int64_t>& shape, const std::vector<float>& values) {
  return from_f32(shape, values.data(), values.size());
}

const Tensor& File::at(const std::string& name) const {
  auto it = tensors.find(name);
  if (it != tensors.end()) return it->second;
  std::string names;
  for (const auto& kv : tensors) names += (names.empty() ? "" : ", ") + kv.first;
  fail("safetensors: no tensor named '", name, "' (present: ", names.empty() ? "none" : names, ")");
}

namespace {

// One tensor to lay out: the writer's view of a File entry or a TensorRef.
struct LayoutItem {
  const std::string* name;
  DType dtype;
  const std::vector<int64_t>* shape;
  uint64_t nbytes;
};

// Checks what serialize() checks of one tensor (its name, and its byte count against dtype x shape).
void check_writable(const std::string& name, DType dtype, const std::vector<int64_t>& shape, uint64_t nbytes) {
  if (name == "__metadata__") fail("safetensors: a tensor cannot be named '__metadata__'");
  const uint64_t want = checked_nbytes(shape, dtype, "tensor '" + name + "'");
  if (want != nbytes)
    fail("safetensors: tensor '", name, "' has ", nbytes, " bytes of data, but ", dtype_name(dtype), " x ",
         shape_str(shape), " needs ", want);
}

// Sorts `items` into layout order -- larger dtypes first, then by name (the reference writer's order),
// which keeps every tensor aligned to its element size once the header is padded to 8 bytes -- and
// returns the length field plus the padded header text.
std::string layout_header(const std::map<std::string, std::string>& metadata, std::vector<LayoutItem>& items) {
  std::stable_sort(items.begin(), items.end(), [](const LayoutItem& a, const LayoutItem& b) {
    const auto sa = dtype_size(a.dtype), sb = dtype_size(b.dtype);
    if (sa != sb) return sa > sb;
    return *a.name < *b.name;
  });
  json header = json::object();
  if (!metadata.empty()) {
    json meta = json::object();
    for (const auto& kv : metadata) meta[kv.first] = kv.second;
    header["__metadata__"] = meta;
  }
  uint64_t offset = 0;
  for (const auto& item : items) {
    const uint64_t end = offset + item.nbytes;
    header[*item.name] = {{"dtype", dtype_name(item.dtype)}, {"shape", *item.shape}, {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text = header.dump();  // compact; strings are UTF-8 (dump throws on invalid UTF-8)
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out;
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return out + text;
}

// A tensor entry of a validated header; [begin, end) is relative to the data buffer.
struct HeaderEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

struct Layout {
  std::map<std::string, std::string> metadata;
  std::vector<HeaderEntry> entries;  // in header (name) order
  uint64_t data_start = 0;           // file offset of the data buffer
};

// Every check of the format (see the header comment) on a file held in memory or mapped.
Layout parse_layout(const char* bytes, uint64_t size, const std::string& source) {
  if (size < 8)
    fail(source, ": truncated safetensors file: ", size, " bytes, the 8-byte header length is missing");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  if (n > kMaxHeaderBytes)
    fail(source, ": safetensors header length ", n, " exceeds the ", kMaxHeaderBytes, "-byte limit");
  if (n > size - 8)
    fail(source, ": truncated safetensors file: header length ", n, " but only ", size - 8,
         " bytes follow the length field");
  if (n == 0 || bytes[8] != '{') fail(source, ": safetensors header must be a JSON object starting with '{'");

  const json header = parse_header_json(std::string(bytes + 8, n), source);
  if (!header.is_object()) fail(source, ": safetensors header must be a JSON object");
  Layout layout;
  layout.data_start = 8 + n;
  const uint64_t buffer_size = size - layout.data_start;

  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail(source, ": __metadata__ must be an object of strings, got ", entry.dump());
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) fail(source, ": __metadata__['", k, "'] must be a string, got ", v.dump());
        layout.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string what = source + ": tensor '" + name + "'";
    if (!entry.is_object()) fail(what, ": expected an object with dtype, shape, data_offsets");
    for (const auto& [k, v] : entry.items())
      if (k != "dtype" && k != "shape" && k != "data_offsets")
        fail(what, ": unknown field '", k, "' (expected dtype, shape, data_offsets)");
    for (const char* k : {"dtype", "shape", "data_offsets"})
      if (!entry.contains(k)) fail(what, ": missing field '", k, "'");
    if (!entry["dtype"].is_string()) fail(what, ": dtype must be a string, got ", entry["dtype"].dump());
    HeaderEntry e;
    e.name = name;
    try {
      e.dtype = parse_dtype(entry["dtype"].get<std::string>());
    } catch (const Error& err) {
      fail(what, ": ", err.what());
    }
    const json& shape = entry["shape"];
    if (!shape.is_array()) fail(what, ": shape must be an array of integers, got ", shape.dump());
    for (std::size_t i = 0; i < shape.size(); ++i) {
      const uint64_t d = as_index(shape[i], what + ": shape[" + std::to_string(i) + "]");
      if (d > static_cast<uint64_t>(INT64_MAX)) fail(what, ": shape[", i, "] = ", d, " is too large");
      e.shape.push_back(static_cast<int64_t>(d));
    }
    const json& offs = entry["data_offsets"];
    if (!offs.is_array() || offs.size() != 2)
      fail(what, ": data_offsets must be [begin, end], got ", offs.dump());
    e.begin = as_index(offs[0], what + ": data_offsets[0]");
    e.end = as_index(offs[1], what + ": data_offsets[1]");
    if (e.end < e.begin) fail(what, ": data_offsets [", e.begin, ", ", e.end, "] end before begin");
    if (e.end > buffer_size)
      fail(what, ": data_offsets [", e.begin, ", ", e.end, "] out of range: the data buffer holds ",
           buffer_size, " bytes");
    const uint64_t want = checked_nbytes(e.shape, e.dtype, what);
    if (e.end - e.begin != want)
      fail(what, ": data_offsets [", e.begin, ", ", e.end, "] span ", e.end - e.begin, " bytes but ",
           dtype_name(e.dtype), " x ", shape_str(e.shape), " needs ", want);
    layout.entries.push_back(std::move(e));
  }

  // The tensors must tile the buffer: sorted by offset, each begins where the previous ended.
  std::vector<const HeaderEntry*> spans;
  for (const auto& e : layout.entries) spans.push_back(&e);
  std::sort(spans.begin(), spans.end(), [](const HeaderEntry* a, const HeaderEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t expect = 0;
  std::string prev = "the start of the data buffer";
  for (const auto* s : spans) {
    if (s->begin < expect)
      fail(source, ": tensor '", s->name, "' at [", s->begin, ", ", s->end, ") overlaps ", prev);
    if (s->begin > expect)
      fail(source, ": gap of ", s->begin - expect, " unreferenced bytes before tensor '", s->name,
           "' at offset ", s->begin, " (after ", prev, ")");
    expect = s->end;
    prev = "tensor '" + s->name + "'";
  }
  if (expect != buffer_size)
    fail(source, ": ", buffer_size - expect, " unreferenced bytes at the end of the data buffer (after ",
         prev, ")");
  return layout;
}

}  // namespace

std::string serialize(const File& file) {
  std::vector<LayoutItem> items;
  for (const auto& kv : file.tensors) {
    check_writable(kv.first, kv.second.dtype, kv.second.shape, kv.second.data.size());
    items.push_back({&kv.first, kv.second.dtype, &kv.second.shape, kv.second.data.size()});
  }
  std::string out = layout_header(file.metadata, items);
  uint64_t total = out.size();
  for (const auto& item : items) total += item.nbytes;
  out.reserve(total);
  for (const auto& item : items) out += file.tensors.at(*item.name).data;
  return out;
}

File parse(const std::string& bytes, const std::string& source) {
  Layout layout = parse_layout(bytes.data(), bytes.size(), source);
  File file;
  file.metadata = std::move(layout.metadata);
  for (auto& e : layout.entries) {
    Tensor t;
    t.dtype = e.dtype;
    t.shape = std::move(e.shape);
    t.data = bytes.substr(layout.data_start + e.begin, e.end - e.begin);
    file.tensors.emplace(std::move(e.name), std::move(t));
  }
  return file;
}

void write_file(const std::string& path, const File& file) { write_file_atomic(path, serialize(file)); }

File read_file(const std::string& path) { return parse(::conductor::read_file(path), path); }

StreamWriter::StreamWriter(const std::string& path, const std::map<std::string, std::string>& metadata,
                           std::vector<TensorSpec> tensors)
    : path_(path), layout_(std::move(tensors)) {
  std::set<std::string> seen;
  std::vector<LayoutItem> items;
  for (const auto& t : layout_) {
    check_writable(t.name, t.dtype, t.shape, checked_nbytes(t.shape, t.dtype, "tensor '" + t.name + "'"));
    if (!seen.insert(t.name).second) fail("safetensors: tensor '", t.name, "' is given twice");
    items.push_back({&t.name, t.dtype, &t.shape, checked_nbytes(t.shape, t.dtype, t.name)});
  }
  const std::string head = layout_header(metadata, items);
  std::vector<TensorSpec> ordered;
  for (const auto& item : items)
    for (const auto& t : layout_)
      if (&t.name == item.name) ordered.push_back(t);
  layout_ = std::move(ordered);

  const std::string parent = std::filesystem::path(path).parent_path().string();
  if (!parent.empty() && !std::filesystem::is_directory(parent))
    fail("cannot write '", path, "': directory '", parent, "' does not exist");
  static std::atomic<uint64_t> counter{0};
  temp_path_ = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  file_ = std::fopen(temp_path_.c_str(), "wb");
  if (!file_) fail("cannot open '", temp_path_, "' for writing: ", std::strerror(errno));
  if (std::fwrite(head.data(), 1, head.size(), file_) != head.size())
    fail("write to '", temp_path_, "' failed: ", std::strerror(errno));
}

StreamWriter::~StreamWriter() {
  if (file_ != nullptr) std::fclose(file_);
  if (!committed_) std::remove(temp_path_.c_str());
}

void StreamWriter::write(const std::string& name, const void* data, uint64_t nbytes) {
  if (next_ >= layout_.size()) fail(path_, ": tensor '", name, "' written after the last tensor of the layout");
  const TensorSpec& want = layout_[next_];
  if (name != want.name) fail(path_, ": tensor '", name, "' written where the layout expects '", want.name, "'");
  const uint64_t size = checked_nbytes(want.shape, want.dtype, name);
  if (nbytes != size) fail(path_, ": tensor '", name, "' has ", nbytes, " bytes, ", dtype_name(want.dtype), " x ",
                           shape_str(want.shape), " needs ", size);
  if (nbytes > 0 && std::fwrite(data, 1, nbytes, file_) != nbytes)
    fail("write to '", temp_path_, "' failed: ", std::strerror(errno));
  ++next_;
}

void StreamWriter::commit() {
  if (committed_) return;
  if (next_ != layout_.size())
    fail(path_, ": commit after ", next_, " of ", layout_.size(), " tensors (next: '", layout_[next_].name, "')");
  const bool ok = std::fflush(file_) == 0 && ::fsync(fileno(file_)) == 0;
  const int saved = errno;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!ok || !closed) fail("write to '", temp_path_, "' failed: ", std::strerror(saved));
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0)
    fail("cannot rename '", temp_path_, "' to '", path_, "': ", std::strerror(errno));
  committed_ = true;
  fsync_directory(std::filesystem::path(path_).parent_path().string());
}

void write_file(const std::string& path, const std::map<std::string, std::string>& metadata,
                const std::vector<TensorRef>& tensors) {
  std::vector<TensorSpec> specs;
  std::map<std::string, const TensorRef*> by_name;
  for (const auto& t : tensors) {
    specs.push_back({t.name, t.dtype, t.shape});
    by_name[t.name] = &t;
  }
  StreamWriter writer(path, metadata, std::move(specs));
  for (const auto& spec : writer.layout()) {
    const TensorRef& t = *by_name.at(spec.name);
    if (t.nbytes > 0 && t.data == nullptr) fail("safetensors: tensor '", t.name, "' has no data");
    writer.write(t.name, t.data, t.nbytes);
  }
  writer.commit();
}

// ---- MappedFile ----

int64_t TensorView::numel() const { return static_cast<int64_t>(checked_numel(shape, "tensor")); }

MappedFile::MappedFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open '", path, "': ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    fail("cannot stat '", path, "': ", std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("'", path, "' is not a regular file");
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      fail("cannot map '", path, "' (", size_, " bytes): ", std::strerror(e));
    }
    base_ = static_cast<const char*>(p);
  }
  ::close(fd);  // the mapping keeps the file open
  try {
    Layout layout = parse_layout(base_, size_, path);
    metadata_ = std::move(layout.metadata);
    for (auto& e : layout.entries) {
      TensorView v;
      v.dtype = e.dtype;
      v.shape = std::move(e.shape);
      v.data = base_ + layout.data_start + e.begin;
      v.nbytes = e.end - e.begin;
      tensors_.emplace(std::move(e.name), std::move(v));
    }
  } catch (...) {
    unmap();
    throw;
  }
}

MappedFile::~MappedFile() { unmap(); }

MappedFile::MappedFile(MappedFile&& other) noexcept { *this = std::move(other); }

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    metadata_ = std::move(other.metadata_);
    tensors_ = std::move(other.tensors_);
    base_ = other.base_;
    size_ = other.size_;
    other.base_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

void MappedFile::unmap() {
  if (base_ != nullptr) ::munmap(const_cast<char*>(base_), size_);
  base_ = nullptr;
  size_ = 0;
}

std::vector<std::string> MappedFile::names() const {
  std::vector<std::string> out;
  for (const auto& kv : tensors_) out.push_back(kv.first);
  return out;
}

const TensorView& MappedFile::at(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it != tensors_.end()) return it->second;
  std::string names;
  for (const auto& kv : tensors_) names += (names.empty() ? "" : ", ") + kv.first;
  fail(path_, ": no tensor named '", name, "' (present: ", names.empty() ? "none" : names, ")");
}

void MappedFile::release(const char* begin, uint64_t nbytes) const {
  if (base_ == nullptr || nbytes == 0) return;
  CONDUCTOR_CHECK(begin >= base_ && begin + nbytes <= base_ + size_, "release outside the mapping of ", path_);
  // Round outward to whole pages: a neighbour's page dropped too is only re-read from the page cache.
  static const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t off = static_cast<uint64_t>(begin - base_);
  const uint64_t first = off / page * page;
  const uint64_t last = std::min<uint64_t>(size_, (off + nbytes + page - 1) / page * page);
  ::madvise(const_cast<char*>(base_) + first, last - first, MADV_DONTNEED);
}

}  // namespace conductor::safetensors
