// CRC-32C (Castagnoli), as used by TFRecord / TensorBoard event files.
#pragma once

#include <cstddef>
#include <cstdint>

namespace conductor {

// CRC-32C of `n` bytes (reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF).
uint32_t crc32c(const void* data, size_t n);
// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t masked_crc32c(const void* data, size_t n);

}  // namespace conductor
