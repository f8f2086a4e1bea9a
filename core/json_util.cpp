#include "core/json_util.h"

#include "core/atomic_file.h"
#include "core/error.h"

namespace conductor {

json parse_json(const std::string& text, const std::string& name) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    fail(name, ": invalid JSON at byte ", e.byte, ": ", e.what());
  }
}

void write_json_atomic(const std::string& path, const json& j) {
  write_file_atomic(path, j.dump(2) + "\n");
}

}  // namespace conductor
