#include "core/json_util.h"

#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"

namespace conductor {

namespace {
// "number overflow parsing '1e999'" -> "1e999".
std::string overflowing_number(const json::out_of_range& e) {
  const std::string w = e.what();
  const auto a = w.find('\''), b = w.rfind('\'');
  return a != std::string::npos && b > a ? w.substr(a + 1, b - a - 1) : std::string("a number");
}

std::string out_of_range_message(const std::string& text, const json::out_of_range& e, const char* top_level) {
  const std::string path = json_overflow_path(text);
  return (path.empty() ? std::string(top_level) : "'" + path + "'") + ": number " + overflowing_number(e) +
         " is out of range (expected a finite number)";
}
}  // namespace

std::string json_overflow_path(const std::string& text) {
  // Frames of the containers open at the failing number: an object's latest key, an array's count
  // of finished elements (the failing one's index).
  struct Frame {
    bool array = false;
    std::string key;
    long index = 0;
  };
  std::vector<Frame> stack;
  auto finished_element = [&] {
    if (!stack.empty() && stack.back().array) ++stack.back().index;
  };
  const json::parser_callback_t cb = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start: stack.push_back(Frame{false, "", 0}); break;
      case json::parse_event_t::array_start: stack.push_back(Frame{true, "", 0}); break;
      case json::parse_event_t::key: stack.back().key = parsed.get<std::string>(); break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        stack.pop_back();
        finished_element();
        break;
      case json::parse_event_t::value: finished_element(); break;
    }
    return true;
  };
  try {
    (void)json::parse(text, cb);
  } catch (const json::exception&) {
  }
  std::string path;
  for (const Frame& f : stack) {
    if (f.array) path += "[" + std::to_string(f.index) + "]";
    else path += (path.empty() ? "" : ".") + f.key;
  }
  return path;
}

json parse_json(const std::string& text, const std::string& name) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    fail(name, ": invalid JSON at byte ", e.byte, ": ", e.what());
  } catch (const json::out_of_range& e) {
    fail(name, ": ", out_of_range_message(text, e, "the top-level value"));
  }
}

json parse_json_body(const std::string& text) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw JsonBodyError("request body is not valid JSON (byte " + std::to_string(e.byte) + ")");
  } catch (const json::out_of_range& e) {
    throw JsonBodyError(out_of_range_message(text, e, "the request body"));
  }
}

void write_json_atomic(const std::string& path, const json& j) {
  write_file_atomic(path, j.dump(2) + "\n");
}

}  // namespace conductor
