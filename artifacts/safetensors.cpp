#include "artifacts/safetensors.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <vector>

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

std::string serialize(const File& file) {
  // Layout order: larger dtypes first, then by name (the reference writer's order), which keeps
  // every tensor aligned to its element size once the header is padded to 8 bytes.
  std::vector<const std::pair<const std::string, Tensor>*> order;
  for (const auto& kv : file.tensors) {
    if (kv.first == "__metadata__") fail("safetensors: a tensor cannot be named '__metadata__'");
    const uint64_t want = checked_nbytes(kv.second.shape, kv.second.dtype, "tensor '" + kv.first + "'");
    if (want != kv.second.data.size())
      fail("safetensors: tensor '", kv.first, "' has ", kv.second.data.size(), " bytes of data, but ",
           dtype_name(kv.second.dtype), " x ", shape_str(kv.second.shape), " needs ", want);
    order.push_back(&kv);
  }
  std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) {
    const auto sa = dtype_size(a->second.dtype), sb = dtype_size(b->second.dtype);
    if (sa != sb) return sa > sb;
    return a->first < b->first;
  });

  json header = json::object();
  if (!file.metadata.empty()) {
    json meta = json::object();
    for (const auto& kv : file.metadata) meta[kv.first] = kv.second;
    header["__metadata__"] = meta;
  }
  uint64_t offset = 0;
  for (const auto* kv : order) {
    const uint64_t end = offset + kv->second.data.size();
    header[kv->first] = {{"dtype", dtype_name(kv->second.dtype)},
                         {"shape", kv->second.shape},
                         {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text = header.dump();  // compact; strings are UTF-8 (dump throws on invalid UTF-8)
  text.append((8 - text.size() % 8) % 8, ' ');

  std::string out;
  out.reserve(8 + text.size() + offset);
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += text;
  for (const auto* kv : order) out += kv->second.data;
  return out;
}

File parse(const std::string& bytes, const std::string& source) {
  if (bytes.size() < 8)
    fail(source, ": truncated safetensors file: ", bytes.size(), " bytes, the 8-byte header length is missing");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  if (n > kMaxHeaderBytes)
    fail(source, ": safetensors header length ", n, " exceeds the ", kMaxHeaderBytes, "-byte limit");
  if (n > bytes.size() - 8)
    fail(source, ": truncated safetensors file: header length ", n, " but only ", bytes.size() - 8,
         " bytes follow the length field");
  if (n == 0 || bytes[8] != '{') fail(source, ": safetensors header must be a JSON object starting with '{'");

  const json header = parse_header_json(bytes.substr(8, n), source);
  if (!header.is_object()) fail(source, ": safetensors header must be a JSON object");
  const uint64_t data_start = 8 + n;
  const uint64_t buffer_size = bytes.size() - data_start;

  File file;
  struct Span {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Span> spans;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail(source, ": __metadata__ must be an object of strings, got ", entry.dump());
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) fail(source, ": __metadata__['", k, "'] must be a string, got ", v.dump());
        file.metadata[k] = v.get<std::string>();
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
    Tensor t;
    try {
      t.dtype = parse_dtype(entry["dtype"].get<std::string>());
    } catch (const Error& e) {
      fail(what, ": ", e.what());
    }
    const json& shape = entry["shape"];
    if (!shape.is_array()) fail(what, ": shape must be an array of integers, got ", shape.dump());
    for (std::size_t i = 0; i < shape.size(); ++i) {
      const uint64_t d = as_index(shape[i], what + ": shape[" + std::to_string(i) + "]");
      if (d > static_cast<uint64_t>(INT64_MAX)) fail(what, ": shape[", i, "] = ", d, " is too large");
      t.shape.push_back(static_cast<int64_t>(d));
    }
    const json& offs = entry["data_offsets"];
    if (!offs.is_array() || offs.size() != 2)
      fail(what, ": data_offsets must be [begin, end], got ", offs.dump());
    const uint64_t begin = as_index(offs[0], what + ": data_offsets[0]");
    const uint64_t end = as_index(offs[1], what + ": data_offsets[1]");
    if (end < begin) fail(what, ": data_offsets [", begin, ", ", end, "] end before begin");
    if (end > buffer_size)
      fail(what, ": data_offsets [", begin, ", ", end, "] out of range: the data buffer holds ",
           buffer_size, " bytes");
    const uint64_t want = checked_nbytes(t.shape, t.dtype, what);
    if (end - begin != want)
      fail(what, ": data_offsets [", begin, ", ", end, "] span ", end - begin, " bytes but ",
           dtype_name(t.dtype), " x ", shape_str(t.shape), " needs ", want);
    t.data = bytes.substr(data_start + begin, end - begin);
    spans.push_back({begin, end, name});
    file.tensors.emplace(name, std::move(t));
  }

  // The tensors must tile the buffer: sorted by offset, each begins where the previous ended.
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expect = 0;
  std::string prev = "the start of the data buffer";
  for (const auto& s : spans) {
    if (s.begin < expect)
      fail(source, ": tensor '", s.name, "' at [", s.begin, ", ", s.end, ") overlaps ", prev);
    if (s.begin > expect)
      fail(source, ": gap of ", s.begin - expect, " unreferenced bytes before tensor '", s.name,
           "' at offset ", s.begin, " (after ", prev, ")");
    expect = s.end;
    prev = "tensor '" + s.name + "'";
  }
  if (expect != buffer_size)
    fail(source, ": ", buffer_size - expect, " unreferenced bytes at the end of the data buffer (after ",
         prev, ")");
  return file;
}

void write_file(const std::string& path, const File& file) { write_file_atomic(path, serialize(file)); }

File read_file(const std::string& path) { return parse(::conductor::read_file(path), path); }

}  // namespace conductor::safetensors
