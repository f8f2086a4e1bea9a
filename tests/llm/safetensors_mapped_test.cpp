// The large-file parts of artifacts/safetensors (MappedFile, StreamWriter) against the in-memory
// reader and writer they extend: same bytes written, same tensors read, same errors.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "artifacts/safetensors.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "tests/llm/llm_test_util.h"

namespace conductor::safetensors {
namespace {

using llm::testing::expect_error;

File sample() {
  File f;
  f.metadata["format"] = "pt";
  std::vector<float> a(6);
  for (int i = 0; i < 6; ++i) a[i] = 0.5f * static_cast<float>(i) - 1.0f;
  f.tensors["a"] = Tensor::from_f32({2, 3}, a);
  Tensor h;
  h.dtype = DType::kBF16;
  h.shape = {3};
  h.data = std::string("\x80\x3f\x00\x40\x40\x40", 6);  // bf16 1, 2, 3
  f.tensors["half"] = h;
  Tensor i64;
  i64.dtype = DType::kI64;
  i64.shape = {2};
  i64.data = std::string(16, '\0');
  i64.data[0] = 7;
  f.tensors["ids"] = i64;
  Tensor empty;
  empty.shape = {0, 4};
  f.tensors["empty"] = empty;
  return f;
}

TEST(SafetensorsMapped, MappedViewsEqualTheParsedTensors) {
  const std::string path = conductor::testing::temp_dir() + "/s.safetensors";
  const File f = sample();
  write_file(path, f);
  const MappedFile m(path);
  EXPECT_EQ(m.metadata(), f.metadata);
  EXPECT_EQ(m.names(), (std::vector<std::string>{"a", "empty", "half", "ids"}));
  for (const auto& [name, t] : f.tensors) {
    const TensorView& v = m.at(name);
    EXPECT_EQ(v.dtype, t.dtype) << name;
    EXPECT_EQ(v.shape, t.shape) << name;
    ASSERT_EQ(v.nbytes, t.data.size()) << name;
    EXPECT_EQ(std::memcmp(v.data, t.data.data(), v.nbytes), 0) << name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data) % dtype_size(v.dtype), 0u) << name;  // header padded to 8
  }
  // Released pages are read back from the file.
  const TensorView& a = m.at("a");
  m.release(a.data, a.nbytes);
  EXPECT_EQ(std::memcmp(a.data, f.tensors.at("a").data.data(), a.nbytes), 0);
  expect_error([&] { m.at("b"); }, {path, "no tensor named 'b'", "a, empty, half, ids"});
}

TEST(SafetensorsMapped, StreamWriterWritesTheSameBytesAsSerialize) {
  const std::string dir = conductor::testing::temp_dir();
  const File f = sample();
  std::vector<TensorRef> refs;
  for (const auto& [name, t] : f.tensors) refs.push_back({name, t.dtype, t.shape, t.data.data(), t.data.size()});
  write_file(dir + "/stream.safetensors", f.metadata, refs);
  EXPECT_EQ(conductor::read_file(dir + "/stream.safetensors"), serialize(f));

  // Tensor by tensor, in the layout order it announces.
  std::vector<TensorSpec> specs;
  for (const auto& [name, t] : f.tensors) specs.push_back({name, t.dtype, t.shape});
  StreamWriter w(dir + "/manual.safetensors", f.metadata, specs);
  std::vector<std::string> order;
  for (const auto& s : w.layout()) order.push_back(s.name);
  EXPECT_EQ(order, (std::vector<std::string>{"ids", "a", "empty", "half"}));  // 8-byte, then 4, then 2
  for (const auto& s : w.layout()) w.write(s.name, f.tensors.at(s.name).data.data(), f.tensors.at(s.name).data.size());
  w.commit();
  EXPECT_EQ(conductor::read_file(dir + "/manual.safetensors"), serialize(f));
}

TEST(SafetensorsMapped, StreamWriterRefusesMisuseAndLeavesNoFileBehind) {
  const std::string dir = conductor::testing::temp_dir();
  const File f = sample();
  std::vector<TensorSpec> specs;
  for (const auto& [name, t] : f.tensors) specs.push_back({name, t.dtype, t.shape});
  {
    StreamWriter w(dir + "/x.safetensors", {}, specs);
    expect_error([&] { w.write("a", f.tensors.at("a").data.data(), 24); }, {"'a'", "expects 'ids'"});
    expect_error([&] { w.write("ids", "", 3); }, {"'ids'", "3 bytes", "needs 16"});
    expect_error([&] { w.commit(); }, {"commit after 0 of 4"});
  }
  for (const auto& e : std::filesystem::directory_iterator(dir)) ADD_FAILURE() << "left behind: " << e.path();
  specs.push_back(specs.front());
  expect_error([&] { StreamWriter(dir + "/y.safetensors", {}, specs); }, {"given twice"});
  expect_error([&] { StreamWriter(dir + "/no/such/dir/z.safetensors", {}, {}); }, {"does not exist"});
}

TEST(SafetensorsMapped, RejectsWhatParseRejectsWithTheSameMessage) {
  const std::string dir = conductor::testing::temp_dir();
  const std::string good = serialize(sample());
  const std::vector<std::string> bad = {
      "",                                     // no length field
      good.substr(0, 20),                     // header cut short
      good.substr(0, good.size() - 1),        // data cut short
      good + "x",                             // bytes after the last tensor
      std::string("\x02\0\0\0\0\0\0\0[]", 10),  // not an object
  };
  for (std::size_t i = 0; i < bad.size(); ++i) {
    const std::string path = dir + "/bad" + std::to_string(i) + ".safetensors";
    write_file_atomic(path, bad[i]);
    std::string want;
    try {
      parse(bad[i], path);
      ADD_FAILURE() << "parse accepted case " << i;
    } catch (const Error& e) {
      want = e.what();
    }
    expect_error([&] { MappedFile m(path); }, {want});
  }
  expect_error([&] { MappedFile m(dir + "/absent.safetensors"); }, {"absent.safetensors"});
  expect_error([&] { MappedFile m(dir); }, {"not a regular file"});
}

}  // namespace
}  // namespace conductor::safetensors
