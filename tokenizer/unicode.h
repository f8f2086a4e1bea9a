// UTF-8 and Unicode helpers of the tokenizer: validation, lossy repair, NFC, character classes.
//
// Character classes follow what HF tokenizers' regex engine (Oniguruma) means by them:
//   letter  = \p{L}  (general categories Lu Ll Lt Lm Lo),
//   number  = \p{N}  (Nd Nl No),
//   space   = \s     (the Unicode White_Space property: 25 code points, see is_white_space()).
// Categories and NFC come from utf8proc (Debian 12: utf8proc 2.8, Unicode 15.0).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace conductor::unicode {

inline constexpr size_t kValid = static_cast<size_t>(-1);

// Byte offset of the first byte that does not start a well-formed UTF-8 sequence (overlong forms,
// surrogates U+D800..U+DFFF and code points above U+10FFFF are ill-formed), or kValid.
size_t find_invalid_utf8(std::string_view s);

// `s` with every ill-formed sequence replaced by U+FFFD, one replacement per maximal subpart
// (the W3C/WHATWG rule that Rust's String::from_utf8_lossy and JavaScript's TextDecoder follow).
std::string sanitize_utf8(std::string_view s);

// Decodes the code point at s[i] of a string already known to be valid UTF-8; sets `len` to its
// byte length (1..4).
inline char32_t decode_at(std::string_view s, size_t i, int& len) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    len = 1;
    return b0;
  }
  if (b0 < 0xE0) {
    len = 2;
    return (char32_t(b0 & 0x1F) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F);
  }
  if (b0 < 0xF0) {
    len = 3;
    return (char32_t(b0 & 0x0F) << 12) | (char32_t(static_cast<unsigned char>(s[i + 1]) & 0x3F) << 6) |
           (static_cast<unsigned char>(s[i + 2]) & 0x3F);
  }
  len = 4;
  return (char32_t(b0 & 0x07) << 18) | (char32_t(static_cast<unsigned char>(s[i + 1]) & 0x3F) << 12) |
         (char32_t(static_cast<unsigned char>(s[i + 2]) & 0x3F) << 6) |
         (static_cast<unsigned char>(s[i + 3]) & 0x3F);
}

void append_utf8(std::string& out, char32_t cp);

// Canonical composition (NFC) of valid UTF-8. Text whose code points are all below U+0300 is
// returned unchanged without calling utf8proc: no character below U+0300 has a canonical
// decomposition, and composition needs a combining mark or a Hangul jamo, all at U+0300 or above
// (the unit tests check this for every pair of such characters).
std::string nfc(std::string_view valid_utf8);
// True when nfc() can skip utf8proc for this text (no byte >= 0xCC, i.e. no code point >= U+0300).
bool nfc_trivially_stable(std::string_view valid_utf8);

bool is_letter(char32_t cp);       // \p{L}
bool is_number(char32_t cp);       // \p{N}
bool is_white_space(char32_t cp);  // \s: Unicode White_Space
// Rust regex's \w (used by HF for single_word added tokens): Alphabetic, marks, Nd, Pc and the
// joiners U+200C/U+200D. Alphabetic is approximated as L + Nl + the circled and squared Latin
// letters (So with Other_Alphabetic); its other Other_Alphabetic members are marks (already in).
bool is_word_char(char32_t cp);

// The Unicode version of the character data (utf8proc's), e.g. "15.0.0".
const char* data_version();

}  // namespace conductor::unicode
