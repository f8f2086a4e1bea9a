#include "core/text_input.h"

#include <cstdint>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_util.h"

namespace conductor {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::vector<std::string> read_text_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("--texts ", path, ": cannot open");
  const bool jsonl = ends_with(path, ".jsonl");
  std::vector<std::string> texts;
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!jsonl) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      texts.push_back(line);
      continue;
    }
    if (line.empty()) continue;
    const json j = parse_json(line, path + " line " + std::to_string(n));
    if (j.is_string()) {
      texts.push_back(j.get<std::string>());
    } else if (j.is_object() && j.contains("text") && j.at("text").is_string()) {
      texts.push_back(j.at("text").get<std::string>());
    } else {
      fail(path, " line ", n, ": expected a JSON string or an object with a string \"text\"");
    }
  }
  return texts;
}

void for_each_jsonl_text(const std::string& path, const std::function<void(const std::string&, std::size_t)>& on_text) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open for reading");
  std::string line;
  std::size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string where = path + ":" + std::to_string(number);
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      fail(where, ": blank line (expected {\"text\": \"...\"}; the output keeps one line per input line)");
    json j;
    try {
      j = json::parse(line);
    } catch (const json::parse_error& e) {
      fail(where, ": invalid JSON (", e.what(), ")");
    }
    if (!j.is_object()) fail(where, ": expected an object {\"text\": \"...\"}, found ", j.type_name());
    auto it = j.find("text");
    if (it == j.end()) fail(where, ": no \"text\" field");
    if (!it->is_string()) fail(where, ": \"text\" must be a string, found ", it->type_name());
    on_text(it->get_ref<const std::string&>(), number);
  }
  if (in.bad()) fail(path, ": read error");
}

std::vector<std::string> read_jsonl_texts(const std::string& path) {
  std::vector<std::string> texts;
  if (ends_with(path, ".jsonl")) {
    for_each_jsonl_text(path, [&](const std::string& t, std::size_t) { texts.push_back(t); });
  } else {
    texts.push_back(read_file(path));
  }
  return texts;
}

}  // namespace conductor
