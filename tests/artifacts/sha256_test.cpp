// SHA-256 against the NIST FIPS 180-4 example vectors (csrc.nist.gov "SHA256.pdf",
// "SHA2_Additional.pdf"): "abc", the 448-bit two-block message, the empty string, one million 'a'.
#include "artifacts/sha256.h"

#include <gtest/gtest.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "tests/test_util.h"

namespace conductor {
namespace {

TEST(Sha256, NistVectors) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, FileHashMatchesInMemoryHashAcrossBlockBoundaries) {
  const std::string dir = testing::temp_dir();
  std::string big(3 * (1 << 20) + 17, 'x');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 + 7);
  write_file_atomic(dir + "/f", big);
  EXPECT_EQ(sha256_file(dir + "/f"), sha256_hex(big));
  EXPECT_THROW(sha256_file(dir + "/absent"), Error);
}

}  // namespace
}  // namespace conductor
