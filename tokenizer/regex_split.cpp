#include "tokenizer/regex_split.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace conductor {
namespace {

// ---------------------------------------------------------------------------------------------
// The Qwen2 pattern, alternative by alternative (the first alternative that matches wins, and a
// quantifier gives back characters only when what follows it fails):
//   1. (?i:'s|'t|'re|'ve|'m|'ll|'d)   ASCII apostrophe + contraction, any case (and ſ for s,
//                                      which case-folds to s under Unicode rules)
//   2. [^\r\n\p{L}\p{N}]?\p{L}+        letters, optionally led by one non-letter, non-digit that is
//                                      not CR or LF (a space, a punctuation mark, an emoji...)
//   3. \p{N}                           one number character
//   4.  ?[^\s\p{L}\p{N}]+[\r\n]*       optional space, a run of "other" characters, then CR/LF
//   5. \s*[\r\n]+                      whitespace up to and including its last CR or LF
//   6. \s+(?!\S)                       whitespace, minus its last character if text follows
//   7. \s+                             whitespace
// Every character starts a match of some alternative (4 takes any "other", 7 any space), so the
// matches tile the text and there are never stretches between them.
// ---------------------------------------------------------------------------------------------

enum class Cls : uint8_t { kLetter, kNumber, kSpace /* White_Space except CR, LF */, kNewline /* CR, LF */, kOther };

struct AsciiTable {
  Cls cls[128];
  AsciiTable() {
    for (int c = 0; c < 128; ++c) {
      if (unicode::is_letter(c)) cls[c] = Cls::kLetter;
      else if (unicode::is_number(c)) cls[c] = Cls::kNumber;
      else if (c == '\r' || c == '\n') cls[c] = Cls::kNewline;
      else if (unicode::is_white_space(c)) cls[c] = Cls::kSpace;
      else cls[c] = Cls::kOther;
    }
  }
};
const AsciiTable kAscii;

inline Cls classify(std::string_view s, size_t i, int& len, char32_t& cp) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) {
    len = 1;
    cp = b;
    return kAscii.cls[b];
  }
  cp = unicode::decode_at(s, i, len);
  if (unicode::is_letter(cp)) return Cls::kLetter;
  if (unicode::is_number(cp)) return Cls::kNumber;
  if (unicode::is_white_space(cp)) return Cls::kSpace;  // CR and LF are ASCII
  return Cls::kOther;
}

inline Cls classify(std::string_view s, size_t i) {
  int len;
  char32_t cp;
  return classify(s, i, len, cp);
}

// End of the run of characters of class `c` that starts at i.
inline size_t run_end(std::string_view s, size_t i, Cls c) {
  const size_t n = s.size();
  while (i < n) {
    int len;
    char32_t cp;
    if (classify(s, i, len, cp) != c) break;
    i += len;
  }
  return i;
}

inline size_t newline_run_end(std::string_view s, size_t i) {
  while (i < s.size() && (s[i] == '\r' || s[i] == '\n')) ++i;
  return i;
}

// Alternative 1: the end of a contraction starting at p (s[p] == '\''), or 0.
inline size_t contraction_end(std::string_view s, size_t p) {
  const size_t n = s.size();
  size_t q = p + 1;
  if (q >= n) return 0;
  const auto lower = [&](size_t k) -> char {
    const auto b = static_cast<unsigned char>(s[k]);
    return b < 0x80 ? static_cast<char>(b | 0x20) : '\0';
  };
  // U+017F LATIN SMALL LETTER LONG S (C5 BF) case-folds to 's'.
  if (q + 1 < n && static_cast<unsigned char>(s[q]) == 0xC5 && static_cast<unsigned char>(s[q + 1]) == 0xBF) return q + 2;
  switch (lower(q)) {
    case 's': case 't': case 'm': case 'd':
      return q + 1;
    case 'r': case 'v':
      return q + 1 < n && lower(q + 1) == 'e' ? q + 2 : 0;
    case 'l':
      return q + 1 < n && lower(q + 1) == 'l' ? q + 2 : 0;
    default:
      return 0;
  }
}

size_t qwen2_match_end(std::string_view s, size_t p) {
  const size_t n = s.size();
  int len0;
  char32_t cp0;
  const Cls c0 = classify(s, p, len0, cp0);
  const size_t p1 = p + len0;
  // 1.
  if (cp0 == '\'') {
    const size_t e = contraction_end(s, p);
    if (e) return e;
  }
  // 2.
  if (c0 == Cls::kLetter) return run_end(s, p1, Cls::kLetter);
  if ((c0 == Cls::kSpace || c0 == Cls::kOther) && p1 < n && classify(s, p1) == Cls::kLetter)
    return run_end(s, p1, Cls::kLetter);
  // 3.
  if (c0 == Cls::kNumber) return p1;
  // 4.
  if (cp0 == ' ' && p1 < n && classify(s, p1) == Cls::kOther)
    return newline_run_end(s, run_end(s, p1, Cls::kOther));
  if (c0 == Cls::kOther) return newline_run_end(s, run_end(s, p1, Cls::kOther));
  // c0 is whitespace: find the run, its last CR/LF and its last character.
  size_t q = p, after_last_newline = 0, last_start = p;
  while (q < n) {
    int len;
    char32_t cp;
    const Cls c = classify(s, q, len, cp);
    if (c != Cls::kSpace && c != Cls::kNewline) break;
    if (c == Cls::kNewline) after_last_newline = q + 1;
    last_start = q;
    q += len;
  }
  // 5.
  if (after_last_newline) return after_last_newline;
  // 6.
  if (q == n) return q;
  if (last_start > p) return last_start;
  // 7.
  return q;
}

class Qwen2Scanner final : public RegexSplitter {
 public:
  void split(std::string_view text, std::vector<Span>& out) const override {
    size_t p = 0;
    while (p < text.size()) {
      const size_t e = qwen2_match_end(text, p);
      CONDUCTOR_CHECK(e > p && e <= text.size(), "qwen2 scanner made no progress at byte ", p);
      out.push_back({static_cast<uint32_t>(p), static_cast<uint32_t>(e)});
      p = e;
    }
  }
  const char* engine() const override { return "qwen2-scanner"; }
};

// ---------------------------------------------------------------------------------------------

// One JIT stack per thread, shared by every pattern (a JIT stack may serve any pattern, one match
// at a time).
struct JitResources {
  pcre2_jit_stack* stack = nullptr;
  pcre2_match_context* context = nullptr;
  JitResources() {
    stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    context = pcre2_match_context_create(nullptr);
    if (stack && context) pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~JitResources() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
  }
};

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

class Pcre2Splitter final : public RegexSplitter {
 public:
  Pcre2Splitter(const std::string& pattern, const std::string& where) {
    int err = 0;
    PCRE2_SIZE err_offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP, &err,
                          &err_offset, nullptr);
    if (!code_) fail(where, ": PCRE2 cannot compile the pattern (at character ", err_offset, "): ", pcre2_message(err));
    jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
  }
  ~Pcre2Splitter() override { pcre2_code_free(code_); }

  void split(std::string_view text, std::vector<Span>& out) const override {
    thread_local JitResources jit;
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
        pcre2_match_data_create_from_pattern(code_, nullptr), &pcre2_match_data_free);
    CONDUCTOR_CHECK(md, "pcre2_match_data_create_from_pattern failed");
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    const size_t n = text.size();
    size_t offset = 0, last = 0;
    while (offset <= n) {
      const int rc = pcre2_match(code_, subject, n, offset, PCRE2_NO_UTF_CHECK, md.get(), jit.context);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) fail("pre-tokenizer regex: PCRE2 failed at byte ", offset, ": ", pcre2_message(rc));
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
      const size_t s = ov[0], e = ov[1];
      if (e == s) {  // an empty match splits nothing: step over one character and go on
        if (s >= n) break;
        int len;
        unicode::decode_at(text, s, len);
        offset = s + len;
        continue;
      }
      if (s > last) out.push_back({static_cast<uint32_t>(last), static_cast<uint32_t>(s)});
      out.push_back({static_cast<uint32_t>(s), static_cast<uint32_t>(e)});
      last = offset = e;
    }
    if (last < n) out.push_back({static_cast<uint32_t>(last), static_cast<uint32_t>(n)});
  }
  const char* engine() const override { return jit_ ? "pcre2-jit" : "pcre2"; }

 private:
  pcre2_code* code_ = nullptr;
  bool jit_ = false;
};

}  // namespace

std::unique_ptr<RegexSplitter> make_regex_splitter(const std::string& pattern, const std::string& where,
                                                   bool force_pcre2) {
  if (!force_pcre2 && pattern == kQwen2Pattern) return std::make_unique<Qwen2Scanner>();
  return std::make_unique<Pcre2Splitter>(pattern, where);
}

}  // namespace conductor
