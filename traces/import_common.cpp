#include "traces/import_common.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"

namespace conductor {

void ImportReport::bad_record(const ImportOptions& options, const std::exception& e) {
  if (!options.skip_bad) throw;  // rethrows the exception being handled, with its own type
  ++skipped;
  if (skipped_examples.size() < kMaxExamples) skipped_examples.emplace_back(e.what());
}

std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs,
                                       const std::vector<std::string>& extensions, const std::string& what) {
  namespace fs = std::filesystem;
  auto matches = [&](const std::string& name) {
    for (const auto& ext : extensions)
      if (name.size() >= ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0) return true;
    return false;
  };
  std::string ext_list;
  for (std::size_t i = 0; i < extensions.size(); ++i) ext_list += (i ? ", *" : "*") + extensions[i];
  std::vector<std::string> files;
  if (inputs.empty()) fail("no --input given (expected ", what, ")");
  for (const auto& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      std::vector<std::string> found;
      for (const auto& entry : fs::directory_iterator(in, ec))
        if (entry.is_regular_file() && matches(entry.path().filename().string())) found.push_back(entry.path().string());
      if (ec) fail("cannot list directory '", in, "': ", ec.message());
      if (found.empty()) fail("input directory '", in, "' holds no ", ext_list, " files (expected ", what, ")");
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::is_regular_file(in, ec)) {
      files.push_back(in);
    } else {
      fail("input '", in, "': no such file or directory");
    }
  }
  return files;
}

std::string base_name(const std::string& path) { return std::filesystem::path(path).filename().string(); }

std::string provider_from_name(const std::string& model) {
  std::string lower;
  for (char c : model) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto slash = lower.find('/');
  if (slash != std::string::npos && slash > 0) return lower.substr(0, slash);
  struct Family {
    const char* prefix;
    const char* provider;
  };
  static const Family kFamilies[] = {
      {"gpt-", "openai"},       {"chatgpt", "openai"},     {"o1", "openai"},          {"o3", "openai"},
      {"o4", "openai"},         {"text-davinci", "openai"}, {"davinci", "openai"},     {"claude", "anthropic"},
      {"gemini", "google"},     {"gemma", "google"},       {"codegemma", "google"},   {"palm", "google"},
      {"llama", "meta"},        {"codellama", "meta"},     {"code-llama", "meta"},    {"mistral", "mistralai"},
      {"mixtral", "mistralai"}, {"codestral", "mistralai"}, {"qwen", "alibaba"},      {"command", "cohere"},
      {"yi-", "zero-one-ai"},   {"deepseek", "deepseek"},  {"grok", "xai"},           {"phi-", "microsoft"},
  };
  for (const auto& f : kFamilies)
    if (lower.rfind(f.prefix, 0) == 0) return f.provider;
  return "unknown";
}

std::vector<std::string> apply_prices(TraceSet& traces, const PriceTable& table) {
  std::vector<std::string> unpriced;
  for (std::size_t m = 0; m < traces.n_models(); ++m) {
    if (!std::isnan(traces.price_in_per_mtok[m]) && !std::isnan(traces.price_out_per_mtok[m])) continue;
    if (const auto* p = table.find(traces.model_name[m])) {
      if (std::isnan(traces.price_in_per_mtok[m])) traces.price_in_per_mtok[m] = p->input_per_mtok;
      if (std::isnan(traces.price_out_per_mtok[m])) traces.price_out_per_mtok[m] = p->output_per_mtok;
    }
    if (std::isnan(traces.price_in_per_mtok[m]) || std::isnan(traces.price_out_per_mtok[m]))
      unpriced.push_back(traces.model_name[m]);
  }
  return unpriced;
}

bool parse_double(const std::string& s, double& out) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  if (b == e) return false;
  const std::string t = s.substr(b, e - b);
  // strtod accepts "nan", "inf" and hex floats; a trace cell must be a plain decimal number.
  for (char c : t)
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'))
      return false;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size() || errno == ERANGE || !std::isfinite(v)) return false;
  out = v;
  return true;
}

std::size_t line_of_offset(const std::string& text, std::size_t offset) {
  offset = std::min(offset, text.size());
  return 1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + offset, '\n'));
}

json parse_json_with_lines(const std::string& text, const std::string& name) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    // e.byte is 1-based and points just past the offending character.
    const std::size_t off = e.byte > 0 ? e.byte - 1 : 0;
    const std::size_t line = line_of_offset(text, off);
    const std::size_t line_start = text.rfind('\n', off == 0 ? 0 : off - 1);
    const std::size_t col = line_start == std::string::npos ? off + 1 : off - line_start;
    std::string msg = e.what();
    // Drop nlohmann's "[json.exception.parse_error.101] parse error at line 1, column 5: " prefix:
    // the position is already in our prefix.
    const auto colon = msg.find(": ", msg.find("parse error"));
    if (colon != std::string::npos) msg = msg.substr(colon + 2);
    fail(name, ":", line, ":", col, ": invalid JSON: ", msg);
  }
}

std::vector<std::size_t> top_level_array_lines(const std::string& text) {
  std::vector<std::size_t> out;
  std::size_t line = 1, counted_to = 0;  // newlines counted in text[0, counted_to)
  std::size_t i = 0;
  const std::size_t n = text.size();
  auto skip_ws = [&] {
    while (i < n && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  };
  skip_ws();
  if (i >= n || text[i] != '[') return out;
  ++i;
  int depth = 1;
  bool in_string = false, expect_value = true;
  for (; i < n && depth > 0; ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    if (depth == 1 && expect_value && c != ']') {
      line += static_cast<std::size_t>(std::count(text.begin() + counted_to, text.begin() + i, '\n'));
      counted_to = i;
      out.push_back(line);
      expect_value = false;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') ++depth;
    else if (c == ']' || c == '}') --depth;
    else if (c == ',' && depth == 1) expect_value = true;
  }
  return out;
}

std::string earlier_place(const std::string& now, const std::string& then) {
  const auto a = now.rfind(':'), b = then.rfind(':');
  if (a != std::string::npos && b != std::string::npos && now.compare(0, a, then, 0, b) == 0)
    return "line " + then.substr(b + 1);
  return then;
}

std::string describe_json(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  if (v.is_string()) return "string " + s;
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean " + s;
  if (v.is_number()) return "number " + s;
  if (v.is_array()) return "array " + s;
  return "object " + s;
}

}  // namespace conductor
