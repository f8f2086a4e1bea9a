// Token-count estimate from text, for trace sources that log text but not token counts.
//
// Rule (documented in docs/importers.md): tokens = ceil(code_points / 4), where code_points is the
// number of Unicode code points of the UTF-8 text (bytes that are not UTF-8 continuation bytes);
// empty text has 0 tokens. "About four characters per token" is OpenAI's published rule of thumb
// for English with the cl100k tokenizer. Checked on RouterBench: for the ARC/Winogrande rows where
// gpt-4-1106-preview answered a single letter (1 output token), the logged cost fixes the true
// prompt length as (cost - $30/1M) / ($10/1M) tokens; the estimate / truth ratio is 1.004 on average.
#pragma once

#include <cstdint>
#include <string>

namespace conductor {

// Number of Unicode code points in UTF-8 text (invalid bytes count as one code point each).
std::size_t utf8_code_points(const std::string& text);

// ceil(utf8_code_points(text) / 4); 0 for empty text.
int32_t estimate_tokens(const std::string& text);

}  // namespace conductor
