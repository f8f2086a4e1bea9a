// Texts that commands read from files: `--texts FILE` (`conductor model embed`, `conductor bench
// encoder`: one text a line, or JSONL) and the JSONL {"text": ...} inputs of the tokenizer commands
// (`conductor tokenizer encode|train`, `conductor bench tokenizer`). Errors name the file and line.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace conductor {

// --texts FILE: one text a line (a trailing '\r' dropped); a .jsonl file holds one JSON string or
// {"text": ...} a line (blank lines skipped).
std::vector<std::string> read_text_lines(const std::string& path);

// Calls on_text(text, line_number) for each line {"text": "..."} of a JSONL file. Other fields are
// allowed (and not read). A blank or malformed line is an error naming the file and the line.
void for_each_jsonl_text(const std::string& path, const std::function<void(const std::string&, std::size_t)>& on_text);

// The texts of a .jsonl file ({"text": ...} lines, as for_each_jsonl_text), or the whole of any
// other file as one text.
std::vector<std::string> read_jsonl_texts(const std::string& path);

}  // namespace conductor
