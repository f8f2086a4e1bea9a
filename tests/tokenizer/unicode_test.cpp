// UTF-8 validation and repair, NFC and the character classes of the tokenizer (tokenizer/unicode.h).
#include <gtest/gtest.h>
#include <utf8proc.h>

#include <cstdlib>

#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/unicode.h"

namespace conductor {
namespace {

using unicode::find_invalid_utf8;
using unicode::kValid;

TEST(Utf8, FindsTheFirstIllFormedByte) {
  EXPECT_EQ(find_invalid_utf8(""), kValid);
  EXPECT_EQ(find_invalid_utf8("plain ASCII text, long enough for the 8-byte fast path"), kValid);
  EXPECT_EQ(find_invalid_utf8("caf\xC3\xA9 \xE4\xBD\xA0 \xF0\x9F\x98\x80"), kValid);
  EXPECT_EQ(find_invalid_utf8("\xF4\x8F\xBF\xBF"), kValid);                // U+10FFFF, the last code point
  EXPECT_EQ(find_invalid_utf8("abc\x80"), 3u);                             // lone continuation byte
  EXPECT_EQ(find_invalid_utf8("abcdefghijk\xC3"), 11u);                    // truncated at the end
  EXPECT_EQ(find_invalid_utf8("ab\xC0\xAF"), 2u);                          // overlong '/'
  EXPECT_EQ(find_invalid_utf8("a\xE0\x80\xAF"), 1u);                       // overlong, 3 bytes
  EXPECT_EQ(find_invalid_utf8("\xED\xA0\x80"), 0u);                        // surrogate U+D800
  EXPECT_EQ(find_invalid_utf8("xy\xF4\x90\x80\x80"), 2u);                  // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("\xF8\x88\x80\x80\x80"), 0u);                // 5-byte form
  EXPECT_EQ(find_invalid_utf8("\xE2\x82x"), 0u);                           // cut by an ASCII byte
  EXPECT_EQ(find_invalid_utf8(std::string("a\0b", 3)), kValid);            // NUL is a character
}

// Expected strings: Python 3.11 bytes.decode("utf-8", "replace") and Node 20's TextDecoder give
// these same results for every case (both substitute maximal subparts, like Rust's
// String::from_utf8_lossy that HF's decoder uses).
TEST(Utf8, SanitizeReplacesEachMaximalSubpartByOneReplacementCharacter) {
  const std::string R = "\xEF\xBF\xBD";
  EXPECT_EQ(sanitize_utf8("a\x80" "b"), "a" + R + "b");
  EXPECT_EQ(sanitize_utf8("\xC3"), R);
  EXPECT_EQ(sanitize_utf8("\xE2\x82"), R);
  EXPECT_EQ(sanitize_utf8("\xE2\x82x"), R + "x");
  EXPECT_EQ(sanitize_utf8("\xF0\x9F\x98"), R);
  EXPECT_EQ(sanitize_utf8("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), R + R + R);
  EXPECT_EQ(sanitize_utf8("\xC0\xAF"), R + R);
  EXPECT_EQ(sanitize_utf8("\xE0\x80\xAF"), R + R + R);
  EXPECT_EQ(sanitize_utf8("\xF4\x90\x80\x80"), R + R + R + R);
  EXPECT_EQ(sanitize_utf8("\xF8\x88\x80\x80\x80"), R + R + R + R + R);
  EXPECT_EQ(sanitize_utf8("\xFF\xFE"), R + R);
  EXPECT_EQ(sanitize_utf8("\xE0\xA0"), R);
  EXPECT_EQ(sanitize_utf8("\xF1\x80\x80"), R);
  EXPECT_EQ(sanitize_utf8("ok\xC2\xA9\xC2"), "ok\xC2\xA9" + R);
  const std::string valid = "naïve café 你好 😀";
  EXPECT_EQ(sanitize_utf8(valid), valid);
  EXPECT_EQ(find_invalid_utf8(sanitize_utf8("\x80\xC3(\xED\xBF\xBF\xF5")), kValid);
}

TEST(Nfc, ComposesCanonicallyAndLeavesComposedTextAlone) {
  EXPECT_EQ(unicode::nfc("e\xCC\x81"), "\xC3\xA9");                 // e + U+0301 -> é
  EXPECT_EQ(unicode::nfc("A\xCC\x8A"), "\xC3\x85");                 // A + ring -> Å
  EXPECT_EQ(unicode::nfc("\xE2\x84\xAB"), "\xC3\x85");              // U+212B ANGSTROM SIGN (singleton) -> Å
  EXPECT_EQ(unicode::nfc("\xE2\x84\xA6"), "\xCE\xA9");              // U+2126 OHM SIGN -> Ω
  EXPECT_EQ(unicode::nfc("\xE1\x84\x80\xE1\x85\xA1"), "\xEA\xB0\x80");  // jamo ᄀ + ᅡ -> 가
  EXPECT_EQ(unicode::nfc("q\xCC\x87\xCC\xA3"), "q\xCC\xA3\xCC\x87");  // reordered by combining class
  EXPECT_EQ(unicode::nfc(">\xCC\xB8"), "\xE2\x89\xAF");             // > + U+0338 -> ≯
  EXPECT_EQ(unicode::nfc("\xEF\xAC\x81"), "\xEF\xAC\x81");          // ﬁ is compatibility-only: unchanged
  const std::string composed = "Tiếng Việt, 한국어, café";
  EXPECT_EQ(unicode::nfc(composed), composed);
  EXPECT_EQ(unicode::nfc(std::string("a\0b", 3)), std::string("a\0b", 3));
}

// nfc() skips utf8proc when every code point is below U+0300. Checked here exhaustively: every
// character below U+0300, alone and followed by any other one, is already in NFC.
TEST(Nfc, TextBelowU0300IsAlreadyNormalized) {
  const auto utf8proc_nfc = [](const std::string& s) {
    utf8proc_uint8_t* out = nullptr;
    const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()),
                                &out, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    std::string r = n >= 0 ? std::string(reinterpret_cast<char*>(out), n) : std::string("<error>");
    std::free(out);
    return r;
  };
  int checked = 0;
  for (char32_t a = 1; a < 0x300; ++a) {
    std::string sa;
    unicode::append_utf8(sa, a);
    ASSERT_TRUE(unicode::nfc_trivially_stable(sa));
    ASSERT_EQ(utf8proc_nfc(sa), sa) << "U+" << std::hex << static_cast<uint32_t>(a);
    for (char32_t b = 0x20; b < 0x300; ++b) {
      std::string s = sa;
      unicode::append_utf8(s, b);
      ASSERT_EQ(utf8proc_nfc(s), s) << std::hex << static_cast<uint32_t>(a) << " " << static_cast<uint32_t>(b);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 0x2FF * (0x300 - 0x20));
  EXPECT_FALSE(unicode::nfc_trivially_stable("e\xCC\x81"));  // U+0301 is the first that matters
}

TEST(CharacterClasses, FollowTheUnicodeProperties) {
  // White_Space (PropList.txt): 25 code points.
  int spaces = 0;
  for (char32_t cp = 0; cp < 0x110000; ++cp) spaces += unicode::is_white_space(cp);
  EXPECT_EQ(spaces, 25);
  for (char32_t cp : {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x200A, 0x2028, 0x2029, 0x202F,
                      0x205F, 0x3000})
    EXPECT_TRUE(unicode::is_white_space(cp)) << std::hex << static_cast<uint32_t>(cp);
  for (char32_t cp : {0x1C, 0x1F, 0x180E, 0x200B, 0xFEFF, 0x00})
    EXPECT_FALSE(unicode::is_white_space(cp)) << std::hex << static_cast<uint32_t>(cp);

  EXPECT_TRUE(unicode::is_letter(U'a'));
  EXPECT_TRUE(unicode::is_letter(U'é'));
  EXPECT_TRUE(unicode::is_letter(U'中'));
  EXPECT_TRUE(unicode::is_letter(U'ʰ'));   // Lm
  EXPECT_TRUE(unicode::is_letter(U'ǅ'));   // Lt
  EXPECT_FALSE(unicode::is_letter(U'\u0301'));  // Mn
  EXPECT_FALSE(unicode::is_letter(U'1'));
  EXPECT_FALSE(unicode::is_letter(U'😀'));
  EXPECT_TRUE(unicode::is_number(U'7'));
  EXPECT_TRUE(unicode::is_number(U'٣'));   // Nd
  EXPECT_TRUE(unicode::is_number(U'Ⅻ'));   // Nl
  EXPECT_TRUE(unicode::is_number(U'½'));   // No
  EXPECT_TRUE(unicode::is_number(U'²'));   // No
  EXPECT_FALSE(unicode::is_number(U'a'));

  EXPECT_TRUE(unicode::is_word_char(U'_'));
  EXPECT_TRUE(unicode::is_word_char(U'\u0330'));  // combining mark: a word character for HF's \w
  EXPECT_TRUE(unicode::is_word_char(U'\u200D'));
  EXPECT_FALSE(unicode::is_word_char(U'-'));
  EXPECT_FALSE(unicode::is_word_char(U','));
  EXPECT_FALSE(unicode::is_word_char(U' '));
}

TEST(ByteLevel, IsTheGpt2AlphabetInQwenOrder) {
  // Printable bytes stand for themselves; the other 68 map to U+0100.. in byte order.
  EXPECT_EQ(byte_to_unicode('!'), U'!');
  EXPECT_EQ(byte_to_unicode(0xFF), U'ÿ');
  EXPECT_EQ(byte_to_unicode(0x00), U'\u0100');
  EXPECT_EQ(byte_to_unicode(' '), U'Ġ');    // U+0120
  EXPECT_EQ(byte_to_unicode('\n'), U'Ċ');   // U+010A
  EXPECT_EQ(byte_to_unicode(0xAD), U'\u0143');
  for (int b = 0; b < 256; ++b) EXPECT_EQ(unicode_to_byte(byte_to_unicode(static_cast<uint8_t>(b))), b);
  EXPECT_EQ(unicode_to_byte(U' '), -1);
  EXPECT_EQ(unicode_to_byte(U'\u0144'), -1);
  const auto& order = byte_level_order();
  ASSERT_EQ(order.size(), 256u);
  EXPECT_EQ(order[0], '!');    // Qwen2's id 0
  EXPECT_EQ(order[93], '~');   // id 93
  EXPECT_EQ(order[188], 0x00);  // the first non-printable byte follows the 188 printable ones
  EXPECT_EQ(order[255], 0xAD);
}

}  // namespace
}  // namespace conductor
