// RouterBench CSV importer (the zero-shot slice in ../shared/data/routerbench, as re-split by
// RouterDC). Format and every conversion rule: docs/importers.md, section "routerbench".
#pragma once

#include <string>
#include <vector>

#include "traces/import_common.h"
#include "traces/trace_set.h"

namespace conductor {

// Imports RouterBench CSV files (a directory means all its *.csv, sorted by name). The split comes
// from the file name (*_train.csv -> train, *_validation.csv / *_val.csv -> validation,
// *_test.csv -> test). Every file must have the same model columns. Prices are left unknown (NaN):
// the caller fills them from a price table (apply_prices). Throws conductor::Error naming the
// file, line and column of the first bad row unless options.skip_bad.
TraceSet import_routerbench(const std::vector<std::string>& inputs, const ImportOptions& options,
                            ImportReport& report);

// Parses a Python list literal of strings, e.g. "['A\\n']" or "[\"it's\"]", as RouterBench stores
// prompts and responses. Supports '...' and "..." strings with Python escapes (\n \r \t \\ \' \"
// \a \b \f \v \xHH \uHHHH \UHHHHHHHH \ooo). Throws conductor::Error (without a location: the
// caller adds file, line and column) on anything else.
std::vector<std::string> parse_python_string_list(const std::string& literal);

// The multiple-choice answer of a response, as a class id (A=0 ... E=4), or -1.
// Rule: strip surrounding white space and one leading '('; the response then must be one letter
// A-E, optionally followed by one of ")" "." ":" "," or by white space and "(" (as in "D (because
// ..."). Anything else ("I don't know", "A chart shows ...", "Rachel", "G") is -1.
int32_t parse_choice_letter(const std::string& response);

// True for RouterBench tasks whose answers are choice letters: arc-*, winogrande*, hellaswag*, mmlu*.
bool is_multiple_choice_task(const std::string& eval_name);

}  // namespace conductor
