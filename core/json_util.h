// JSON helpers on nlohmann::json shared by the CLI, reports and the server.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"

namespace conductor {

using json = nlohmann::json;

// Parses `text`; throws conductor::Error("<name>: invalid JSON at byte N: ...") on bad input, and
// "<name>: 'a.b[2]': number 1e999 is out of range ..." for a number a double cannot hold.
json parse_json(const std::string& text, const std::string& name);

// A request body that is not JSON or holds a number a double cannot hold (the server answers 400).
class JsonBodyError : public Error {
 public:
  explicit JsonBodyError(const std::string& what) : Error(what) {}
};
// Parses a request body. Throws JsonBodyError with a message for the client: "request body is not
// valid JSON (byte N)", or "'cost_weight': number 1e999 is out of range (expected a finite number)"
// naming the field by its path ('price_factors.gpt-4o', 'messages[2].n', 'the request body').
json parse_json_body(const std::string& text);
// The path of the value being parsed when nlohmann::json reported a number out of range in `text`
// ("cost_weight", "a.b[2]"; "" at the top level). Slow: only for error messages.
std::string json_overflow_path(const std::string& text);
// Writes `j` (pretty, 2 spaces) atomically to `path`.
void write_json_atomic(const std::string& path, const json& j);

}  // namespace conductor
