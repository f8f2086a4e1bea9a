// JSON helpers on nlohmann::json shared by the CLI, reports and the server.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace conductor {

using json = nlohmann::json;

// Parses `text`; throws conductor::Error("<name>: invalid JSON at byte N: ...") on bad input.
json parse_json(const std::string& text, const std::string& name);
// Writes `j` (pretty, 2 spaces) atomically to `path`.
void write_json_atomic(const std::string& path, const json& j);

}  // namespace conductor
