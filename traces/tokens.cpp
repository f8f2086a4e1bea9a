#include "traces/tokens.h"

#include <limits>

namespace conductor {

std::size_t utf8_code_points(const std::string& text) {
  std::size_t n = 0;
  for (unsigned char c : text)
    if ((c & 0xC0) != 0x80) ++n;  // every byte except continuation bytes 10xxxxxx starts a code point
  return n;
}

int32_t estimate_tokens(const std::string& text) {
  const std::size_t cp = utf8_code_points(text);
  const std::size_t t = (cp + 3) / 4;
  return t > static_cast<std::size_t>(std::numeric_limits<int32_t>::max())
             ? std::numeric_limits<int32_t>::max()
             : static_cast<int32_t>(t);
}

}  // namespace conductor
