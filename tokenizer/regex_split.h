// The Split(Regex, behavior Isolated) pre-tokenizer step: cuts text into the regex's matches and
// the (rare) stretches between matches, in order, dropping nothing.
//
// Two engines give the same pieces:
//   - Qwen2Scanner: a hand-written scanner for exactly the Qwen2 pattern (kQwen2Pattern), used
//     whenever a file's pattern is that string. It follows the regex's alternation order and
//     backtracking by hand (see the comments in regex_split.cpp) and uses the Oniguruma meaning of
//     the classes (unicode.h), as HF tokenizers does.
//   - Pcre2Splitter: any other pattern, run by PCRE2 (UTF + UCP, JIT). PCRE2's \s also matches
//     U+180E (Mongolian vowel separator), which Oniguruma's does not; the dedicated scanner has no
//     such difference. The tests check both engines against each other on the Qwen2 pattern.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace conductor {

// The Split pattern of Qwen2 / Qwen2.5 / Qwen3 tokenizer.json files.
inline constexpr const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// A [begin, end) byte range of the text that was split.
struct Span {
  uint32_t begin;
  uint32_t end;
};

class RegexSplitter {
 public:
  virtual ~RegexSplitter() = default;
  // Appends to `out` the pieces of `text` (valid UTF-8): every match and every non-empty stretch
  // between matches, in order, so that the pieces tile `text` exactly. Empty matches add nothing.
  // Safe to call from several threads at once.
  virtual void split(std::string_view text, std::vector<Span>& out) const = 0;
  // "qwen2-scanner" or "pcre2-jit" / "pcre2" (for the bench and docs).
  virtual const char* engine() const = 0;
};

// The dedicated scanner when `pattern` is kQwen2Pattern (unless force_pcre2), PCRE2 otherwise.
// Throws conductor::Error "<where>: ..." when PCRE2 cannot compile the pattern.
std::unique_ptr<RegexSplitter> make_regex_splitter(const std::string& pattern, const std::string& where,
                                                   bool force_pcre2 = false);

}  // namespace conductor
