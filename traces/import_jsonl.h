// JSONL importer for a user's own production logs: one JSON object per line, of three types:
// "model" (a worker and its prices), "query" (a full-information row: one query with the outcome
// of every model that was run on it) and "decision" (a bandit-feedback row: the one worker a
// logging policy chose, with its propensity). The line schema is in docs/importers.md, "jsonl".
#pragma once

#include <string>
#include <vector>

#include "traces/import_common.h"
#include "traces/trace_set.h"

namespace conductor {

// Imports JSONL files (a directory means all its *.jsonl and *.ndjson files, sorted by name).
// Bad lines (invalid JSON, wrong types, missing fields, out-of-range values, unknown fields,
// conflicting query metadata) throw "FILE:LINE: field 'x': expected ..., got ..." unless
// options.skip_bad, which skips and counts them. Models and queries keep the order in which they
// first appear. /outcomes/* is written only when there is at least one "query" line.
TraceSet import_jsonl(const std::vector<std::string>& inputs, const ImportOptions& options, ImportReport& report);

}  // namespace conductor
