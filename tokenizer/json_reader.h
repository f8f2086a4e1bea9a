// Checked access to the fields of an HF tokenizer.json, shared by the BPE loader
// (tokenizer/tokenizer_json.cpp) and the WordPiece loader (tokenizer/wordpiece.cpp). Every error is a
// conductor::Error "FILE: JSON.PATH: what was expected, what was found".
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/json_util.h"
#include "tokenizer/bpe_tokenizer.h"

namespace conductor::tokenizer_json {

// "null", "true", "the string \"x\"", "the number 3", "an array", "an object".
inline std::string describe(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return v.get<bool>() ? "true" : "false";
    case json::value_t::string: return "the string " + v.dump();
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "the number " + v.dump();
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    default: return "a " + std::string(v.type_name());
  }
}

inline std::string quote(std::string_view s) { return json(std::string(s)).dump(); }

class Reader {
 public:
  explicit Reader(const std::string& name) : name_(name) {}

  [[noreturn]] void bad(const std::string& path, const std::string& what) const { fail(name_, ": ", path, ": ", what); }

  // Checks that `v` is an object whose fields are all in `allowed`.
  void fields(const json& v, const std::string& path, std::initializer_list<const char*> allowed) const {
    if (!v.is_object()) bad(path, "expected an object, found " + describe(v));
    for (auto it = v.begin(); it != v.end(); ++it) {
      bool known = false;
      for (const char* a : allowed) known = known || it.key() == a;
      if (known) continue;
      std::string list;
      for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
      bad(path + "." + it.key(), "unknown field (this loader reads: " + list + "); refusing to ignore it");
    }
  }
  const json* find(const json& obj, const char* key) const {
    auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
  }
  const json& need(const json& obj, const std::string& path, const char* key) const {
    const json* v = find(obj, key);
    if (!v) bad(path.empty() ? std::string(key) : path + "." + key, "missing");
    return *v;
  }
  std::string string(const json& obj, const std::string& path, const char* key) const {
    const json& v = need(obj, path, key);
    if (!v.is_string()) bad(path + "." + key, "expected a string, found " + describe(v));
    return v.get<std::string>();
  }
  bool boolean(const json& obj, const std::string& path, const char* key, std::optional<bool> fallback) const {
    const json* v = find(obj, key);
    if (!v) {
      if (fallback) return *fallback;
      bad(path + "." + key, "missing");
    }
    if (!v->is_boolean()) bad(path + "." + key, "expected true or false, found " + describe(*v));
    return v->get<bool>();
  }
  std::string type(const json& v, const std::string& path) const {
    if (!v.is_object()) bad(path, "expected an object, found " + describe(v));
    return string(v, path, "type");
  }
  // A token id: an integer in [0, 2^31 - 2].
  int32_t id(const json& v, const std::string& path) const {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX - 1)
      bad(path, "expected an id in [0, 2^31 - 2], found " + describe(v));
    return static_cast<int32_t>(v.get<int64_t>());
  }

  // The top-level added_tokens array (null: none), each entry with all seven HF fields.
  std::vector<AddedToken> added_tokens(const json& v, const std::string& path) const {
    std::vector<AddedToken> out;
    if (v.is_null()) return out;
    if (!v.is_array()) bad(path, "expected an array, found " + describe(v));
    for (size_t i = 0; i < v.size(); ++i) {
      const std::string p = path + "[" + std::to_string(i) + "]";
      const json& t = v[i];
      fields(t, p, {"id", "content", "single_word", "lstrip", "rstrip", "normalized", "special"});
      AddedToken a;
      a.id = id(need(t, p, "id"), p + ".id");
      a.content = string(t, p, "content");
      a.single_word = boolean(t, p, "single_word", std::nullopt);
      a.lstrip = boolean(t, p, "lstrip", std::nullopt);
      a.rstrip = boolean(t, p, "rstrip", std::nullopt);
      a.normalized = boolean(t, p, "normalized", std::nullopt);
      a.special = boolean(t, p, "special", std::nullopt);
      out.push_back(std::move(a));
    }
    return out;
  }

 protected:
  const std::string& name_;
};

}  // namespace conductor::tokenizer_json
