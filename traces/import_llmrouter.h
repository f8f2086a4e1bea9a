// LLMRouter importer (ulab-uiuc/LLMRouter data, as in ../shared/data/llmrouter). Format and
// conversion rules: docs/importers.md, section "llmrouter".
#pragma once

#include <string>
#include <vector>

#include "traces/import_common.h"
#include "traces/trace_set.h"

namespace conductor {

// Inputs (files, or directories whose *.json and *.jsonl files are taken):
//  - score files: a JSON array of {"question": str, "scores": {model: number in [0,1] | null}, ...};
//    the split comes from the file name ("train" -> train, "val" -> validation, "test" -> test);
//  - exactly one price table: a JSON object of model -> {"input_price", "output_price" (USD per
//    1M tokens), "service", ...} (default_llm.json);
//  - task maps: JSON lines {"query": str, "task_name": str, "ground_truth": str, ...}
//    (default_query_*.jsonl); at least one is required.
// Costs = (input_tokens x input_price + output_tokens x output_price) / 1e6, with tokens estimated
// by estimate_tokens(): input from the question, output from the reference answer (ground_truth),
// because LLMRouter does not ship the responses.
TraceSet import_llmrouter(const std::vector<std::string>& inputs, const ImportOptions& options,
                          ImportReport& report);

}  // namespace conductor
