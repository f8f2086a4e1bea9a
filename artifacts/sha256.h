// SHA-256 (FIPS 180-4) through OpenSSL's libcrypto, as lowercase hex.
#pragma once

#include <string>

namespace conductor {

std::string sha256_hex(const std::string& bytes);
// Hashes a file in 1 MiB blocks; throws conductor::Error naming the path when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace conductor
