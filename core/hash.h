// The one non-cryptographic hash of the project: 64-bit FNV-1a (never std::hash, whose values differ
// between standard libraries). Feature hashing, per-worker stream ids and config fingerprints use it.
#pragma once

#include <cstdint>
#include <string_view>

namespace conductor {

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
constexpr uint64_t kFnvPrime = 0x100000001b3ULL;

// 64-bit FNV-1a of `bytes`, continuing from `h` (the offset basis by default).
inline uint64_t fnv1a64(std::string_view bytes, uint64_t h = kFnvOffset) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= kFnvPrime;
  }
  return h;
}

}  // namespace conductor
