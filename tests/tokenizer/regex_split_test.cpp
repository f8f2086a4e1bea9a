// The Split(Regex, Isolated) step: the dedicated Qwen2 scanner against hand-derived pieces and
// against PCRE2 running the pattern as written (tokenizer/regex_split.h).
#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "tests/tokenizer/tokenizer_test_util.h"
#include "tokenizer/regex_split.h"
#include "tokenizer/unicode.h"

namespace conductor {
namespace {

std::vector<std::string> pieces(const RegexSplitter& s, const std::string& text) {
  std::vector<Span> spans;
  s.split(text, spans);
  std::vector<std::string> out;
  for (const Span& sp : spans) out.push_back(text.substr(sp.begin, sp.end - sp.begin));
  return out;
}

using V = std::vector<std::string>;

// Expected pieces derived by hand from the pattern's alternatives (numbered as in regex_split.cpp):
// 1 contraction, 2 letters with one optional leading non-letter, 3 one number, 4 optional space +
// other characters + CR/LF, 5 whitespace to its last CR/LF, 6 whitespace minus its last character
// before text, 7 whitespace.
TEST(Qwen2Scanner, SplitsLikeThePattern) {
  const auto scanner = make_regex_splitter(kQwen2Pattern, "test");
  ASSERT_STREQ(scanner->engine(), "qwen2-scanner");
  const auto& s = *scanner;
  EXPECT_EQ(pieces(s, ""), V{});
  EXPECT_EQ(pieces(s, "Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(pieces(s, "I'm"), (V{"I", "'m"}));                        // 1
  EXPECT_EQ(pieces(s, "DON'T"), (V{"DON", "'T"}));                    // 1, any case
  EXPECT_EQ(pieces(s, "We'Ll"), (V{"We", "'Ll"}));
  EXPECT_EQ(pieces(s, "they'RE you'vE"), (V{"they", "'RE", " you", "'vE"}));
  EXPECT_EQ(pieces(s, "'sup"), (V{"'s", "up"}));                      // 1 wins over 2
  EXPECT_EQ(pieces(s, "'x"), (V{"'x"}));                              // 2: apostrophe + letters
  EXPECT_EQ(pieces(s, "it'\xC5\xBF"), (V{"it", "'\xC5\xBF"}));        // 1: U+017F folds to s
  EXPECT_EQ(pieces(s, "12345"), (V{"1", "2", "3", "4", "5"}));        // 3
  EXPECT_EQ(pieces(s, "a1b"), (V{"a", "1", "b"}));
  EXPECT_EQ(pieces(s, " 1"), (V{" ", "1"}));                          // 7 then 3
  EXPECT_EQ(pieces(s, "hello  world"), (V{"hello", " ", " world"}));  // 6 then 2
  EXPECT_EQ(pieces(s, "a\n\n\nb"), (V{"a", "\n\n\n", "b"}));          // 5
  EXPECT_EQ(pieces(s, "  \n  x"), (V{"  \n", " ", " x"}));            // 5, 6, 2
  EXPECT_EQ(pieces(s, "x  "), (V{"x", "  "}));                        // 6 at the end
  EXPECT_EQ(pieces(s, "\n "), (V{"\n", " "}));
  EXPECT_EQ(pieces(s, " \n"), (V{" \n"}));
  EXPECT_EQ(pieces(s, "a\r\nb"), (V{"a", "\r\n", "b"}));
  EXPECT_EQ(pieces(s, "}\n\n"), (V{"}\n\n"}));                        // 4 takes trailing CR/LF
  EXPECT_EQ(pieces(s, "x {\n  y"), (V{"x", " {\n", " ", " y"}));
  EXPECT_EQ(pieces(s, "...!? ..."), (V{"...!?", " ..."}));
  EXPECT_EQ(pieces(s, "\t\tfoo"), (V{"\t", "\tfoo"}));               // 6, then 2 with a tab
  EXPECT_EQ(pieces(s, "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C\xEF\xBC\x81"),
            (V{"\xE4\xBD\xA0\xE5\xA5\xBD", "\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C", "\xEF\xBC\x81"}));  // 你好 ，世界 ！
  EXPECT_EQ(pieces(s, "\xF0\x9F\x98\x80\xF0\x9F\x98\x80 x"), (V{"\xF0\x9F\x98\x80\xF0\x9F\x98\x80", " x"}));
  EXPECT_EQ(pieces(s, "\xF0\x9F\x94\xA5" "abc"), (V{"\xF0\x9F\x94\xA5" "abc"}));  // emoji + letters
  EXPECT_EQ(pieces(s, "\xE3\x80\x80x"), (V{"\xE3\x80\x80x"}));        // U+3000 leads letters
  EXPECT_EQ(pieces(s, "e\xCC\x81x"), (V{"e", "\xCC\x81x"}));          // a mark is not a letter
  EXPECT_EQ(pieces(s, "a \xC2\x85" "b"), (V{"a", " ", "\xC2\x85" "b"}));  // U+0085 is White_Space
  EXPECT_EQ(pieces(s, "x\xE2\x80\xA8\xE2\x80\xA8"), (V{"x", "\xE2\x80\xA8\xE2\x80\xA8"}));
}

// Characters of every class, all assigned in Unicode 14 (PCRE2 10.42's data) and 15 (utf8proc's),
// without U+180E, the one character whose \s-ness PCRE2 and Oniguruma disagree on.
const std::vector<std::string>& alphabet() {
  static const std::vector<std::string> a = {
      "a", "Z", "s", "S", "t", "r", "e", "v", "m", "l", "L", "d", "'", "'", "0", "7", " ", " ", " ", "\t", "\n", "\r",
      "\v", "\f", ".", ",", "!", "-", "{", "}", "\"", "_", "\xC5\xBF" /* ſ */, "\xC3\xA9" /* é */,
      "\xCC\x81" /* U+0301 */, "\xE4\xB8\xAD" /* 中 */, "\xE3\x81\x82" /* あ */, "\xEA\xB0\x80" /* 가 */,
      "\xD8\xB9" /* ع */, "\xD9\xA3" /* ٣ */, "\xE2\x85\xAB" /* Ⅻ */, "\xC2\xBD" /* ½ */, "\xC2\xB2" /* ² */,
      "\xF0\x9F\x98\x80" /* 😀 */, "\xE2\x80\x8D" /* ZWJ */, "\xEF\xB8\x8F" /* VS16 */, "\xF0\x9F\x8F\xBD" /* skin */,
      "\xE3\x80\x80" /* U+3000 */, "\xC2\xA0" /* NBSP */, "\xE2\x80\xA8" /* U+2028 */, "\xC2\x85" /* U+0085 */,
      "\xEF\xBB\xBF" /* U+FEFF */, "\xE2\x80\x8B" /* U+200B */, "\xEE\x80\x80" /* U+E000 */, "\xC2\xA9" /* © */,
      "\xE2\x80\x94" /* — */, "\xEF\xBC\x8C" /* ， */, "\xCA\xB0" /* ʰ */, "\xC7\x85" /* ǅ */};
  return a;
}

TEST(Qwen2Scanner, AgreesWithPcre2OnRandomText) {
  const auto scanner = make_regex_splitter(kQwen2Pattern, "test");
  const auto pcre = make_regex_splitter(kQwen2Pattern, "test", /*force_pcre2=*/true);
  ASSERT_NE(std::string(pcre->engine()).find("pcre2"), std::string::npos);
  std::mt19937 rng(12345);
  const auto& a = alphabet();
  std::uniform_int_distribution<size_t> pick(0, a.size() - 1), len(0, 40);
  for (int i = 0; i < 20000; ++i) {
    std::string text;
    for (size_t k = len(rng); k > 0; --k) text += a[pick(rng)];
    ASSERT_EQ(pieces(*scanner, text), pieces(*pcre, text)) << "text #" << i << ": " << json(text).dump();
  }
}

TEST(Qwen2Scanner, AgreesWithPcre2OnTheGoldenTexts) {
  const auto scanner = make_regex_splitter(kQwen2Pattern, "test");
  const auto pcre = make_regex_splitter(kQwen2Pattern, "test", true);
  int compared = 0;
  for (const std::string& text : testing::golden_texts()) {
    if (text.find("\xE1\xA0\x8E") != std::string::npos) continue;  // U+180E: PCRE2's \s differs, see header
    EXPECT_EQ(pieces(*scanner, text), pieces(*pcre, text)) << json(text).dump();
    ++compared;
  }
  EXPECT_GE(compared, 300);
}

TEST(Pcre2Splitter, KeepsTheStretchesBetweenMatchesAndSkipsEmptyMatches) {
  const auto digits = make_regex_splitter(R"(\d+)", "test");
  EXPECT_EQ(pieces(*digits, "ab12cd345"), (V{"ab", "12", "cd", "345"}));
  EXPECT_EQ(pieces(*digits, "no digits"), (V{"no digits"}));
  const auto xs = make_regex_splitter("x*", "test");
  EXPECT_EQ(pieces(*xs, "axxb"), (V{"a", "xx", "b"}));
  const auto any = make_regex_splitter(".", "test");
  EXPECT_EQ(pieces(*any, "\xC3\xA9z"), (V{"\xC3\xA9", "z"}));  // UTF mode: one character per match
}

TEST(Pcre2Splitter, AnInvalidPatternNamesWhereItCameFrom) {
  try {
    make_regex_splitter("(unclosed", "tok.json: pre_tokenizer.pretokenizers[0].pattern.Regex");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("tok.json: pre_tokenizer.pretokenizers[0].pattern.Regex"), std::string::npos) << m;
    EXPECT_NE(m.find("PCRE2 cannot compile"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace conductor
