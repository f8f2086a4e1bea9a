// safetensors reader/writer against the published format (huggingface/safetensors README, "Format").
#include "artifacts/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "core/json_util.h"
#include "tests/test_util.h"

namespace conductor::safetensors {
namespace {

std::string le64(uint64_t n) {
  std::string s;
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return s;
}

// A file from a header text and a data buffer, built the way the spec describes it.
std::string make_file(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b) s.push_back(static_cast<char>(x));
  return s;
}

// Expects parse() to throw an Error whose message contains `needle`.
void expect_reject(const std::string& file, const std::string& needle) {
  try {
    parse(file, "bad.safetensors");
    FAIL() << "accepted a file that should fail with '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bad.safetensors"), std::string::npos) << e.what();
  }
}

// Written by hand byte by byte: header length 54 (0x36) as u64 LE, the 54-byte JSON header, then
// two IEEE-754 binary32 values little-endian: 1.0f = 0x3F800000, -0.5f = 0xBF000000.
const std::string kHandHeader = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
std::string hand_file() {
  return bytes({0x36, 0, 0, 0, 0, 0, 0, 0}) + kHandHeader +
         bytes({0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xBF});
}

TEST(Safetensors, ReadsAFileWrittenByHand) {
  ASSERT_EQ(kHandHeader.size(), 54u);
  File f = parse(hand_file());
  ASSERT_EQ(f.tensors.size(), 1u);
  const Tensor& w = f.at("w");
  EXPECT_EQ(w.dtype, DType::kF32);
  EXPECT_EQ(w.shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(w.to_f32("w"), (std::vector<float>{1.0f, -0.5f}));
  EXPECT_TRUE(f.metadata.empty());
}

TEST(Safetensors, WriterEmitsTheExactBytesOfTheSpec) {
  File f;
  f.tensors["w"] = Tensor::from_f32({2}, {1.0f, -0.5f});
  // nlohmann sorts keys; the header is then padded with 2 spaces to 56 = 7 x 8 bytes.
  const std::string header = R"({"w":{"data_offsets":[0,8],"dtype":"F32","shape":[2]}})";
  ASSERT_EQ(header.size(), 54u);
  const std::string expected = bytes({0x38, 0, 0, 0, 0, 0, 0, 0}) + header + "  " +
                               bytes({0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xBF});
  EXPECT_EQ(serialize(f), expected);
}

TEST(Safetensors, RoundTripsEveryDtypeScalarsEmptyTensorsAndMetadata) {
  File f;
  f.metadata["format"] = "pt";
  f.metadata["note"] = "ünïcode ok";
  const char* names[] = {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16",
                         "BF16", "I32", "U32", "F32", "F64", "I64", "U64"};
  int k = 0;
  for (const char* n : names) {
    Tensor t;
    t.dtype = parse_dtype(n);
    EXPECT_STREQ(dtype_name(t.dtype), n);
    t.shape = {2, 3};
    t.data.resize(6 * dtype_size(t.dtype));
    for (std::size_t i = 0; i < t.data.size(); ++i) t.data[i] = static_cast<char>(i * 7 + k);
    f.tensors[std::string("t_") + n] = t;
    ++k;
  }
  f.tensors["scalar"] = Tensor::from_f32({}, {3.25f});
  f.tensors["empty"] = Tensor::from_f32({0, 4}, std::vector<float>{});
  const std::string s = serialize(f);
  // Header padded so that the data buffer starts 8-byte aligned.
  uint64_t n = 0;
  std::memcpy(&n, s.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  File g = parse(s);
  EXPECT_EQ(g.metadata, f.metadata);
  ASSERT_EQ(g.tensors.size(), f.tensors.size());
  for (const auto& [name, t] : f.tensors) {
    const Tensor& u = g.at(name);
    EXPECT_EQ(u.dtype, t.dtype) << name;
    EXPECT_EQ(u.shape, t.shape) << name;
    EXPECT_EQ(u.data, t.data) << name;
  }
  EXPECT_EQ(g.at("scalar").to_f32(), (std::vector<float>{3.25f}));
  EXPECT_EQ(g.at("scalar").numel(), 1);
  EXPECT_EQ(g.at("empty").numel(), 0);
}

TEST(Safetensors, WriterAlignsEveryTensorToItsElementSize) {
  File f;
  Tensor b;
  b.dtype = DType::kU8;
  b.shape = {3};
  b.data = "abc";
  f.tensors["a_bytes"] = b;
  Tensor d;
  d.dtype = DType::kF64;
  d.shape = {2};
  d.data.assign(16, '\1');
  f.tensors["z_doubles"] = d;
  f.tensors["m_floats"] = Tensor::from_f32({1}, {1.f});
  const std::string s = serialize(f);
  uint64_t n = 0;
  std::memcpy(&n, s.data(), 8);
  const json h = json::parse(s.substr(8, n));
  // F64 first (offset 0), then F32 (8-aligned 16), then U8.
  EXPECT_EQ(h["z_doubles"]["data_offsets"], json({0, 16}));
  EXPECT_EQ(h["m_floats"]["data_offsets"], json({16, 20}));
  EXPECT_EQ(h["a_bytes"]["data_offsets"], json({20, 23}));
}

TEST(Safetensors, FileWriteIsAtomicAndReadable) {
  const std::string dir = conductor::testing::temp_dir();
  File f;
  f.tensors["x"] = Tensor::from_f32({2, 2}, {1, 2, 3, 4});
  write_file(dir + "/m.safetensors", f);
  EXPECT_EQ(read_file(dir + "/m.safetensors").at("x").to_f32(), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_THROW(read_file(dir + "/missing.safetensors"), Error);
}

TEST(Safetensors, AcceptsTrailingSpacePaddingAndEmptyHeaderObject) {
  EXPECT_EQ(parse(make_file(kHandHeader + "    ", std::string(8, '\0'))).tensors.size(), 1u);
  EXPECT_TRUE(parse(make_file("{}      ", "")).tensors.empty());
}

TEST(Safetensors, RejectsTruncatedFiles) {
  expect_reject("", "truncated");
  expect_reject(bytes({0x36, 0, 0}), "truncated");
  // header length says 54 but only 10 header bytes follow
  expect_reject(bytes({0x36, 0, 0, 0, 0, 0, 0, 0}) + kHandHeader.substr(0, 10), "truncated");
  // data cut short: the tensor's end offset 8 is past the 5-byte buffer
  expect_reject(make_file(kHandHeader, std::string(5, '\0')), "out of range");
}

TEST(Safetensors, RejectsOversizedHeaders) {
  expect_reject(le64(kMaxHeaderBytes + 1) + "{}", "exceeds");
  expect_reject(le64(~0ull) + "{}", "exceeds");
}

TEST(Safetensors, RejectsDuplicateKeys) {
  const std::string t = R"("w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
  expect_reject(make_file("{" + t + "," + t + "}", std::string(4, '\0')), "key 'w' twice");
  expect_reject(make_file(R"({"w":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                          std::string(4, '\0')),
                "key 'dtype' twice");
  expect_reject(make_file(R"({"__metadata__":{"a":"1","a":"2"}})", ""), "key 'a' twice");
}

TEST(Safetensors, RejectsOverlapsGapsAndTrailingBytes) {
  const auto two = [](int b0, int e0, int b1, int e1) {
    return "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[" + std::to_string(b0) + "," +
           std::to_string(e0) + "]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[" +
           std::to_string(b1) + "," + std::to_string(e1) + "]}}";
  };
  EXPECT_EQ(parse(make_file(two(0, 4, 4, 8), std::string(8, '\0'))).tensors.size(), 2u);
  expect_reject(make_file(two(0, 4, 2, 6), std::string(8, '\0')), "overlaps");
  expect_reject(make_file(two(0, 4, 0, 4), std::string(4, '\0')), "overlaps");
  expect_reject(make_file(two(0, 4, 6, 10), std::string(10, '\0')), "gap of 2");
  expect_reject(make_file(two(4, 8, 8, 12), std::string(12, '\0')), "gap of 4");
  expect_reject(make_file(two(0, 4, 4, 8), std::string(9, '\0')), "1 unreferenced bytes at the end");
  expect_reject(make_file(two(0, 4, 4, 8), std::string(7, '\0')), "out of range");
  expect_reject(make_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", std::string(4, '\0')),
                "end before begin");
}

TEST(Safetensors, RejectsWrongSizesForDtypeAndShape) {
  expect_reject(make_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')),
                "needs 12");
  expect_reject(make_file(R"({"a":{"dtype":"F64","shape":[1],"data_offsets":[0,4]}})", std::string(4, '\0')),
                "needs 8");
  expect_reject(make_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})",
                          std::string(4, '\0')),
                "64 bits");
}

TEST(Safetensors, RejectsMalformedEntries) {
  const std::string d4(4, '\0');
  expect_reject(make_file(R"({"a":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}})", d4), "unknown safetensors dtype 'F31'");
  expect_reject(make_file(R"({"a":{"dtype":7,"shape":[1],"data_offsets":[0,4]}})", d4), "dtype must be a string");
  expect_reject(make_file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", d4), "non-negative integer");
  expect_reject(make_file(R"({"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}})", d4), "non-negative integer");
  expect_reject(make_file(R"({"a":{"dtype":"F32","shape":1,"data_offsets":[0,4]}})", d4), "shape must be an array");
  expect_reject(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", d4), "data_offsets must be");
  expect_reject(make_file(R"({"a":{"dtype":"F32","shape":[1]}})", d4), "missing field 'data_offsets'");
  expect_reject(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", d4), "unknown field 'x'");
  expect_reject(make_file(R"({"a":[1,2]})", d4), "expected an object");
  expect_reject(make_file(R"({"__metadata__":{"k":1}})", ""), "must be a string");
  expect_reject(make_file(R"({"__metadata__":[]})", ""), "__metadata__ must be an object");
  expect_reject(make_file(R"( {})", ""), "starting with '{'");
  expect_reject(make_file(R"([])", ""), "starting with '{'");
  expect_reject(make_file(R"({"a":)", ""), "not valid JSON");
  expect_reject(make_file("{\"\xff\":1}", ""), "not valid JSON");  // invalid UTF-8
  expect_reject(make_file("{}\x01", ""), "not valid JSON");        // padding other than whitespace
  expect_reject(le64(0), "starting with '{'");
}

TEST(Safetensors, WriterRejectsInconsistentTensors) {
  File f;
  Tensor t = Tensor::from_f32({2}, {1, 2});
  t.shape = {3};
  f.tensors["bad"] = t;
  EXPECT_THROW(serialize(f), Error);
  File g;
  g.tensors["__metadata__"] = Tensor::from_f32({1}, {1});
  EXPECT_THROW(serialize(g), Error);
  Tensor neg = Tensor::from_f32({0}, std::vector<float>{});
  neg.shape = {-1};
  File h;
  h.tensors["neg"] = neg;
  EXPECT_THROW(serialize(h), Error);
}

TEST(Safetensors, ToF32RejectsOtherDtypesAndMissingNamesAreListed) {
  File f = parse(hand_file());
  try {
    f.at("v");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("present: w"), std::string::npos) << e.what();
  }
  Tensor t;
  t.dtype = DType::kF64;
  t.shape = {1};
  t.data.assign(8, '\0');
  EXPECT_THROW(t.to_f32("t"), Error);
}

}  // namespace
}  // namespace conductor::safetensors
