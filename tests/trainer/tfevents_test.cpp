// CRC-32C against published vectors and TensorBoard event records that decode back.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tests/test_util.h"
#include "trainer/crc32c.h"
#include "trainer/metrics.h"

namespace conductor {
namespace {

TEST(Crc32c, KnownVectors) {
  // "123456789" -> 0xE3069283 (the CRC catalogue's check value for CRC-32/ISCSI).
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  // RFC 3720 (iSCSI) appendix B.4: 32 bytes of 0x00, of 0xFF, ascending and descending.
  uint8_t buf[32];
  std::memset(buf, 0, 32);
  EXPECT_EQ(crc32c(buf, 32), 0x8A9136AAu);
  std::memset(buf, 0xFF, 32);
  EXPECT_EQ(crc32c(buf, 32), 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(crc32c(buf, 32), 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<uint8_t>(31 - i);
  EXPECT_EQ(crc32c(buf, 32), 0x113FDB5Cu);
  EXPECT_EQ(crc32c("", 0), 0u);
}

TEST(Crc32c, MaskedAsTfRecord) {
  const uint32_t c = crc32c("123456789", 9);
  EXPECT_EQ(masked_crc32c("123456789", 9), ((c >> 15) | (c << 17)) + 0xa282ead8u);
}

uint64_t le64(const std::string& s, size_t p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[p + i]);
  return v;
}
uint32_t le32(const std::string& s, size_t p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[p + i]);
  return v;
}

TEST(TensorBoard, WritesValidRecordsWithScalarSummaries) {
  const std::string dir = testing::temp_dir();
  std::string path;
  {
    TensorBoardSink sink(dir);
    path = sink.path();
    Metrics m;
    m.update = 1;
    m.global_step = 512;
    m.set("charts/episodic_return", 21.5);
    m.set("losses/value_loss", 0.25);
    sink.write(m);
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string data = ss.str();
  std::vector<std::string> records;
  size_t p = 0;
  while (p < data.size()) {
    ASSERT_LE(p + 12, data.size());
    const uint64_t len = le64(data, p);
    EXPECT_EQ(le32(data, p + 8), masked_crc32c(data.data() + p, 8));
    ASSERT_LE(p + 12 + len + 4, data.size());
    const std::string payload = data.substr(p + 12, len);
    EXPECT_EQ(le32(data, p + 12 + len), masked_crc32c(payload.data(), payload.size()));
    records.push_back(payload);
    p += 12 + len + 4;
  }
  ASSERT_EQ(records.size(), 2u);
  EXPECT_NE(records[0].find("brain.Event:2"), std::string::npos);
  // Event: field 1 double (tag 0x09), field 2 step varint (0x10, 512 = 0x80 0x04), field 5 summary.
  const std::string& ev = records[1];
  EXPECT_EQ(static_cast<uint8_t>(ev[0]), 0x09);
  EXPECT_EQ(static_cast<uint8_t>(ev[9]), 0x10);
  EXPECT_EQ(static_cast<uint8_t>(ev[10]), 0x80);
  EXPECT_EQ(static_cast<uint8_t>(ev[11]), 0x04);
  EXPECT_EQ(static_cast<uint8_t>(ev[12]), 0x2A);
  // Value{tag = "losses/value_loss" (0x0A len ...), simple_value = 0.25f (0x15 00 00 80 3E)}.
  const std::string want_value = std::string("\x0A\x11losses/value_loss\x15\x00\x00\x80\x3E", 24);
  EXPECT_NE(ev.find(want_value), std::string::npos);
}

TEST(Jsonl, SkipsWallClockMetricsAndWritesNullForNonFinite) {
  const std::string dir = testing::temp_dir();
  {
    JsonlSink sink(dir + "/m.jsonl", 0);
    Metrics m;
    m.update = 3;
    m.global_step = 96;
    m.set("charts/episodic_return", 1.5);
    m.set("time/steps_per_s", 1234.0);
    m.set("losses/explained_variance", std::nan(""));
    sink.write(m);
    sink.flush();
  }
  std::ifstream in(dir + "/m.jsonl");
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line,
            R"({"charts/episodic_return":1.5,"global_step":96,"losses/explained_variance":null,"update":3})");
}

}  // namespace
}  // namespace conductor
