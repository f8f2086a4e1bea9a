#include "artifacts/sha256.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "core/error.h"

namespace conductor {

namespace {

struct Hasher {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), &EVP_MD_CTX_free};
  Hasher() {
    CONDUCTOR_CHECK(ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1, "SHA-256 init");
  }
  void update(const void* p, std::size_t n) {
    CONDUCTOR_CHECK(EVP_DigestUpdate(ctx.get(), p, n) == 1, "SHA-256 update");
  }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    CONDUCTOR_CHECK(EVP_DigestFinal_ex(ctx.get(), md, &len) == 1 && len == 32, "SHA-256 final");
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
      out.push_back(digits[md[i] >> 4]);
      out.push_back(digits[md[i] & 15]);
    }
    return out;
  }
};

}  // namespace

std::string sha256_hex(const std::string& bytes) {
  Hasher h;
  h.update(bytes.data(), bytes.size());
  return h.hex();
}

std::string sha256_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot open '", path, "': ", std::strerror(errno));
  Hasher h;
  std::vector<char> buf(1 << 20);
  while (f) {
    f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (f.gcount() > 0) h.update(buf.data(), static_cast<std::size_t>(f.gcount()));
  }
  if (f.bad()) fail("read error on '", path, "'");
  return h.hex();
}

}  // namespace conductor
