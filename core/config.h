// One YAML loader for every typed config in Conductor.
//
// Usage (each config struct has a `static X parse(ConfigReader r)` that reads every field once):
//
//   ConfigDoc doc = ConfigDoc::load_file("configs/quickstart.yaml");
//   doc.apply_override("trainer.lr=1e-3");              // from --set
//   TrainConfig cfg = TrainConfig::parse(doc.root());   // typed; errors name file:line and key path
//   write_file_atomic(run_dir + "/config.yaml", doc.resolved_yaml());   // defaults filled in
//
// Contract of ConfigReader:
//  - get/required/get_in convert the value to the requested type; a wrong type, a missing required key
//    or an out-of-range value throws ConfigError("FILE:LINE: key 'a.b.c': expected ..., got ...").
//  - finish() throws when the mapping has keys nobody read, listing the valid ones. Every parse()
//    ends with r.finish().
//  - every value read (including defaults) is recorded into the resolved document.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"

namespace conductor {

class ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& what) : Error(what) {}
};

class ConfigReader;

class ConfigDoc {
 public:
  static ConfigDoc load_file(const std::string& path);
  static ConfigDoc load_string(const std::string& text, const std::string& name = "<string>");
  // An empty document (every key takes its default).
  static ConfigDoc empty(const std::string& name = "<defaults>");

  // Applies "a.b.c=value" (value parsed as YAML: 3, 1e-3, true, [1,2], text). Creates missing maps.
  void apply_override(const std::string& assignment);
  void apply_overrides(const std::vector<std::string>& assignments);

  ConfigReader root() const;
  // The document as read: every key the parsers read, defaults included.
  std::string resolved_yaml() const;
  const std::string& name() const { return state_->name; }

  struct State {
    std::string name;
    YAML::Node doc;
    YAML::Node resolved;
    std::set<std::string> overridden;  // key paths set by --set
  };

 private:
  std::shared_ptr<State> state_;
};

class ConfigReader {
 public:
  ConfigReader(std::shared_ptr<ConfigDoc::State> state, YAML::Node node, std::string path,
               YAML::Node resolved);

  bool has(const std::string& key) const;

  template <class T>
  T get(const std::string& key, const T& default_value);
  template <class T>
  T required(const std::string& key);
  // Inclusive range [lo, hi].
  template <class T>
  T get_in(const std::string& key, const T& default_value, const T& lo, const T& hi);
  template <class T>
  T required_in(const std::string& key, const T& lo, const T& hi);
  // One of `choices`.
  std::string get_choice(const std::string& key, const std::string& default_value,
                         const std::vector<std::string>& choices);

  // A nested mapping; absent means an empty mapping (all defaults).
  ConfigReader child(const std::string& key);
  // A sequence of mappings.
  std::vector<ConfigReader> child_list(const std::string& key);
  // The keys of a mapping whose keys are free-form (e.g. worker names); marks it as read.
  std::vector<std::string> keys_of(const std::string& key);

  // Throws naming `key` with file and line.
  [[noreturn]] void fail_at(const std::string& key, const std::string& message) const;
  // Same, with the line taken from `node` (list elements, nested values).
  [[noreturn]] void fail_node(const std::string& key, const YAML::Node& node,
                              const std::string& message) const;
  // Rejects keys that were never read.
  void finish() const;

  std::string where(const std::string& key) const;  // "file:line: key 'a.b'"
  const std::string& path() const { return path_; }

 private:
  YAML::Node value_node(const std::string& key) const;
  std::string key_path(const std::string& key) const;
  template <class T>
  T convert(const std::string& key, const YAML::Node& n) const;
  void record(const std::string& key, const YAML::Node& value);

  std::shared_ptr<ConfigDoc::State> state_;
  YAML::Node node_;
  std::string path_;
  YAML::Node resolved_;
  std::shared_ptr<std::set<std::string>> read_;
};

// Loads "configs/x.yaml" with overrides, parses it with T::parse, and returns both.
template <class T>
struct LoadedConfig {
  T config;
  ConfigDoc doc;
};

template <class T>
LoadedConfig<T> load_config(const std::string& path, const std::vector<std::string>& overrides) {
  ConfigDoc doc = ConfigDoc::load_file(path);
  doc.apply_overrides(overrides);
  T cfg = T::parse(doc.root());
  return {std::move(cfg), std::move(doc)};
}

// ---- template implementations ----

namespace config_detail {
template <class T>
struct TypeName;
template <> struct TypeName<bool> { static constexpr const char* value = "a boolean (true/false)"; };
template <> struct TypeName<int> { static constexpr const char* value = "an integer"; };
template <> struct TypeName<int64_t> { static constexpr const char* value = "an integer"; };
template <> struct TypeName<uint64_t> { static constexpr const char* value = "a non-negative integer"; };
template <> struct TypeName<double> { static constexpr const char* value = "a number"; };
template <> struct TypeName<float> { static constexpr const char* value = "a number"; };
template <> struct TypeName<std::string> { static constexpr const char* value = "a string"; };
template <class U>
struct TypeName<std::vector<U>> { static constexpr const char* value = "a list"; };
template <class U>
struct TypeName<std::map<std::string, U>> { static constexpr const char* value = "a mapping"; };

std::string describe(const YAML::Node& n);
bool scalar_is_integer(const std::string& s);
bool scalar_is_number(const std::string& s);
bool scalar_is_bool(const std::string& s);
}  // namespace config_detail

template <class T>
T ConfigReader::convert(const std::string& key, const YAML::Node& n) const {
  using config_detail::describe;
  if constexpr (std::is_same_v<T, std::string>) {
    if (!n.IsScalar())
      fail_node(key, n, std::string("expected a string, got ") + describe(n));
    return n.Scalar();
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!n.IsScalar() || !config_detail::scalar_is_bool(n.Scalar()))
      fail_node(key, n, std::string("expected a boolean (true/false), got ") + describe(n));
    return n.as<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    if (std::is_unsigned_v<T> && n.IsScalar() && !n.Scalar().empty() && n.Scalar()[0] == '-')
      fail_node(key, n, std::string("expected ") + config_detail::TypeName<T>::value + ", got " + describe(n));
    if (!n.IsScalar() || !config_detail::scalar_is_integer(n.Scalar()))
      fail_node(key, n, std::string("expected ") + config_detail::TypeName<T>::value + ", got " + describe(n));
    try {
      return n.as<T>();
    } catch (const YAML::Exception&) {
      fail_node(key, n, std::string("integer out of range: ") + n.Scalar());
    }
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!n.IsScalar() || !config_detail::scalar_is_number(n.Scalar()))
      fail_node(key, n, std::string("expected a number, got ") + describe(n));
    return n.as<T>();
  } else {
    // std::vector<U>
    using U = typename T::value_type;
    if (!n.IsSequence()) fail_node(key, n, std::string("expected a list, got ") + describe(n));
    T out;
    for (std::size_t i = 0; i < n.size(); ++i)
      out.push_back(convert<U>(key + "[" + std::to_string(i) + "]", n[i]));
    return out;
  }
}

template <class T>
T ConfigReader::get(const std::string& key, const T& default_value) {
  read_->insert(key);
  YAML::Node n = value_node(key);
  if (!n || n.IsNull()) {
    record(key, YAML::Node(default_value));
    return default_value;
  }
  T v = convert<T>(key, n);
  record(key, YAML::Node(v));
  return v;
}

template <class T>
T ConfigReader::required(const std::string& key) {
  read_->insert(key);
  YAML::Node n = value_node(key);
  if (!n || n.IsNull()) fail_at(key, std::string("required key is missing (expected ") +
                                         config_detail::TypeName<T>::value + ")");
  T v = convert<T>(key, n);
  record(key, YAML::Node(v));
  return v;
}

template <class T>
T ConfigReader::get_in(const std::string& key, const T& default_value, const T& lo, const T& hi) {
  T v = get<T>(key, default_value);
  if (!(v >= lo && v <= hi)) {
    std::ostringstream os;
    os << "value " << v << " out of range: expected " << lo << " <= value <= " << hi;
    fail_at(key, os.str());
  }
  return v;
}

template <class T>
T ConfigReader::required_in(const std::string& key, const T& lo, const T& hi) {
  T v = required<T>(key);
  if (!(v >= lo && v <= hi)) {
    std::ostringstream os;
    os << "value " << v << " out of range: expected " << lo << " <= value <= " << hi;
    fail_at(key, os.str());
  }
  return v;
}

}  // namespace conductor
