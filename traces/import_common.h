// Parts shared by the trace importers (RouterBench CSV, LLMRouter JSON, JSONL production logs):
// options, the bad-record report, input expansion, LiteLLM price tables, provider names, strict
// number parsing and JSON parsing that reports line numbers. Formats: docs/importers.md.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "core/json_util.h"
#include "traces/pricing.h"
#include "traces/trace_set.h"

namespace conductor {

struct ImportOptions {
  // false (default): the first bad record aborts the import with an error naming file, line and
  // field. true: bad records are skipped and counted in ImportReport (never silently).
  bool skip_bad = false;
};

struct ImportReport {
  std::size_t records = 0;             // data records examined (CSV rows, JSON entries, JSONL lines)
  std::size_t skipped = 0;             // bad records skipped (only with skip_bad)
  std::vector<std::string> skipped_examples;  // messages of the first kMaxExamples skipped records
  std::vector<std::string> notes;      // facts the user should see (unpriced models, ...)
  static constexpr std::size_t kMaxExamples = 5;

  // Call only inside a catch handler: counts the bad record when `options.skip_bad`, otherwise
  // rethrows the exception being handled (`e`).
  void bad_record(const ImportOptions& options, const std::exception& e);
};

// Expands files and directories: a directory contributes its regular files whose names end with
// one of `extensions` (sorted by name); a file is taken as given. Throws when a path does not exist
// or nothing matches.
std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs,
                                       const std::vector<std::string>& extensions, const std::string& what);

// File name without directories ("a/b/c.csv" -> "c.csv").
std::string base_name(const std::string& path);

// Provider (organisation) from a model name: the part before '/' when there is one
// ("meta/llama-2-70b-chat" -> "meta"), otherwise a known family prefix ("gpt-4..." -> "openai",
// "claude-..." -> "anthropic", "gemini..." -> "google", ...), else "unknown". Lower case.
std::string provider_from_name(const std::string& model);

// Fills NaN model prices from a LiteLLM price table (traces/pricing.h) by exact model name: no fuzzy
// matching, since a near name can be another product (Bedrock's "anthropic.claude-v2" is not
// Anthropic's API). Entries without a cost stay NaN. Returns the names of models still unpriced.
std::vector<std::string> apply_prices(TraceSet& traces, const PriceTable& table);

// Strict decimal parsing of a whole cell (surrounding spaces allowed); false on anything else,
// including NaN and infinities.
bool parse_double(const std::string& s, double& out);

// Parses JSON text; a syntax error becomes "NAME:LINE:COLUMN: invalid JSON: ...".
json parse_json_with_lines(const std::string& text, const std::string& name);
// 1-based line of byte `offset` in `text`.
std::size_t line_of_offset(const std::string& text, std::size_t offset);
// 1-based lines where the elements of the top-level JSON array in `text` begin (empty if the top
// level is not an array). Used to name the line of entry i in error messages.
std::vector<std::size_t> top_level_array_lines(const std::string& text);

// "line N" when `then` ("FILE:N") is in the same file as `now` ("FILE:M"), else `then` itself:
// for messages that point back at an earlier line.
std::string earlier_place(const std::string& now, const std::string& then);

// "got" part of error messages: a JSON value, shortened to at most 60 characters.
std::string describe_json(const json& v);

}  // namespace conductor
