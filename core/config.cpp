#include "core/config.h"

#include <algorithm>
#include <regex>
#include <sstream>

#include "core/atomic_file.h"

namespace conductor {

namespace config_detail {
std::string describe(const YAML::Node& n) {
  if (!n) return "nothing";
  switch (n.Type()) {
    case YAML::NodeType::Null: return "null";
    case YAML::NodeType::Scalar: return "'" + n.Scalar() + "'";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    default: return "an undefined value";
  }
}
bool scalar_is_integer(const std::string& s) {
  static const std::regex re(R"(^[-+]?(0|[1-9][0-9_]*|0x[0-9a-fA-F]+)$)");
  return std::regex_match(s, re);
}
bool scalar_is_number(const std::string& s) {
  static const std::regex re(
      R"(^[-+]?((\.[0-9]+|[0-9][0-9_]*(\.[0-9]*)?)([eE][-+]?[0-9]+)?|\.(inf|Inf|INF)|\.(nan|NaN|NAN))$)");
  return std::regex_match(s, re);
}
bool scalar_is_bool(const std::string& s) {
  static const std::set<std::string> ok = {"true", "false", "True", "False", "TRUE", "FALSE",
                                           "yes",  "no",    "Yes",  "No",    "on",   "off"};
  return ok.count(s) > 0;
}
}  // namespace config_detail

namespace {
std::shared_ptr<ConfigDoc::State> make_state(const std::string& name, YAML::Node doc) {
  auto st = std::make_shared<ConfigDoc::State>();
  st->name = name;
  st->doc = doc;
  st->resolved = YAML::Node(YAML::NodeType::Map);
  return st;
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : path) {
    if (c == '.') {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(cur);
  return parts;
}
}  // namespace

ConfigDoc ConfigDoc::load_file(const std::string& path) {
  std::string text = read_file(path);
  return load_string(text, path);
}

ConfigDoc ConfigDoc::load_string(const std::string& text, const std::string& name) {
  YAML::Node doc;
  try {
    doc = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(detail::concat(name, ":", e.mark.line + 1, ":", e.mark.column + 1,
                                     ": invalid YAML: ", e.msg));
  }
  if (!doc || doc.IsNull()) doc = YAML::Node(YAML::NodeType::Map);
  if (!doc.IsMap())
    throw ConfigError(detail::concat(name, ":", doc.Mark().line + 1,
                                     ": expected a mapping of keys at the top level, got ",
                                     config_detail::describe(doc)));
  ConfigDoc d;
  d.state_ = make_state(name, doc);
  return d;
}

ConfigDoc ConfigDoc::empty(const std::string& name) {
  ConfigDoc d;
  d.state_ = make_state(name, YAML::Node(YAML::NodeType::Map));
  return d;
}

void ConfigDoc::apply_override(const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError("--set '" + assignment + "': expected KEY.PATH=VALUE");
  std::string path = assignment.substr(0, eq);
  std::string text = assignment.substr(eq + 1);
  YAML::Node value;
  try {
    value = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError("--set '" + assignment + "': value is not valid YAML: " + e.msg);
  }
  if (!value) value = YAML::Node(YAML::NodeType::Null);
  auto parts = split_path(path);
  for (const auto& p : parts)
    if (p.empty()) throw ConfigError("--set '" + assignment + "': empty component in key path");
  // yaml-cpp nodes have reference semantics; walk with fresh handles.
  YAML::Node cur = state_->doc;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node next = cur[parts[i]];
    if (!next || next.IsNull()) {
      cur[parts[i]] = YAML::Node(YAML::NodeType::Map);
      next = cur[parts[i]];
    } else if (!next.IsMap()) {
      throw ConfigError("--set '" + assignment + "': '" + parts[i] + "' is " +
                        config_detail::describe(next) + ", not a mapping");
    }
    cur.reset(next);
  }
  cur[parts.back()] = value;
  state_->overridden.insert(path);
}

void ConfigDoc::apply_overrides(const std::vector<std::string>& assignments) {
  for (const auto& a : assignments) apply_override(a);
}

ConfigReader ConfigDoc::root() const {
  return ConfigReader(state_, state_->doc, "", state_->resolved);
}

std::string ConfigDoc::resolved_yaml() const {
  YAML::Emitter out;
  out << state_->resolved;
  return std::string("# resolved configuration (every key, defaults included) from ") +
         state_->name + "\n" + out.c_str() + "\n";
}

ConfigReader::ConfigReader(std::shared_ptr<ConfigDoc::State> state, YAML::Node node,
                           std::string path, YAML::Node resolved)
    : state_(std::move(state)),
      node_(node),
      path_(std::move(path)),
      resolved_(resolved),
      read_(std::make_shared<std::set<std::string>>()) {}

std::string ConfigReader::key_path(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

YAML::Node ConfigReader::value_node(const std::string& key) const {
  if (!node_ || !node_.IsMap()) return YAML::Node();
  for (auto it = node_.begin(); it != node_.end(); ++it)
    if (it->first.Scalar() == key) return it->second;
  return YAML::Node();
}

bool ConfigReader::has(const std::string& key) const {
  YAML::Node n = value_node(key);
  return n && !n.IsNull();
}

std::string ConfigReader::where(const std::string& key) const {
  std::string kp = key_path(key);
  std::ostringstream os;
  os << state_->name;
  if (state_->overridden.count(kp)) {
    os << " (--set " << kp << ")";
  } else {
    YAML::Node n = value_node(key);
    int line = -1;
    if (n && n.Mark().line >= 0) line = n.Mark().line;
    else if (node_ && node_.Mark().line >= 0) line = node_.Mark().line;
    if (line >= 0) os << ":" << line + 1;
  }
  os << ": key '" << kp << "'";
  return os.str();
}

void ConfigReader::fail_at(const std::string& key, const std::string& message) const {
  throw ConfigError(where(key) + ": " + message);
}

void ConfigReader::fail_node(const std::string& key, const YAML::Node& node,
                             const std::string& message) const {
  const std::string kp = key_path(key);
  // The override check uses the top key: "--set hidden=[1,x]" makes hidden[1] an override too.
  const std::string top = kp.substr(0, kp.find('['));
  if (state_->overridden.count(kp) || state_->overridden.count(top) || !node || node.Mark().line < 0)
    fail_at(key, message);
  throw ConfigError(state_->name + ":" + std::to_string(node.Mark().line + 1) + ": key '" + kp + "': " + message);
}

void ConfigReader::record(const std::string& key, const YAML::Node& value) {
  resolved_[key] = YAML::Clone(value);
}

std::string ConfigReader::get_choice(const std::string& key, const std::string& default_value,
                                     const std::vector<std::string>& choices) {
  std::string v = get<std::string>(key, default_value);
  if (std::find(choices.begin(), choices.end(), v) == choices.end()) {
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
    fail_at(key, "unknown value '" + v + "': expected one of " + list);
  }
  return v;
}

ConfigReader ConfigReader::child(const std::string& key) {
  read_->insert(key);
  YAML::Node n = value_node(key);
  if (n && !n.IsNull() && !n.IsMap())
    fail_at(key, "expected a mapping, got " + config_detail::describe(n));
  if (!n || n.IsNull()) n = YAML::Node(YAML::NodeType::Map);
  // A second read of the same section (a parser that checks one key again) keeps what the first
  // recorded: resetting it would write `key: {}` into the resolved config, which a resume then
  // compares against a fully resolved section and refuses.
  if (!resolved_[key].IsMap()) resolved_[key] = YAML::Node(YAML::NodeType::Map);
  return ConfigReader(state_, n, key_path(key), resolved_[key]);
}

std::vector<ConfigReader> ConfigReader::child_list(const std::string& key) {
  read_->insert(key);
  YAML::Node n = value_node(key);
  std::vector<ConfigReader> out;
  if (!n || n.IsNull()) return out;
  if (!n.IsSequence()) fail_at(key, "expected a list, got " + config_detail::describe(n));
  resolved_[key] = YAML::Node(YAML::NodeType::Sequence);
  YAML::Node res_list = resolved_[key];
  for (std::size_t i = 0; i < n.size(); ++i) {
    std::string kp = key_path(key) + "[" + std::to_string(i) + "]";
    if (!n[i].IsMap())
      throw ConfigError(state_->name + ":" + std::to_string(n[i].Mark().line + 1) + ": key '" + kp +
                        "': expected a mapping, got " + config_detail::describe(n[i]));
    res_list.push_back(YAML::Node(YAML::NodeType::Map));
    out.emplace_back(state_, n[i], kp, res_list[i]);
  }
  return out;
}

std::vector<std::string> ConfigReader::keys_of(const std::string& key) {
  YAML::Node n = value_node(key);
  std::vector<std::string> keys;
  if (!n || n.IsNull()) return keys;
  if (!n.IsMap()) fail_at(key, "expected a mapping, got " + config_detail::describe(n));
  for (auto it = n.begin(); it != n.end(); ++it) keys.push_back(it->first.Scalar());
  return keys;
}

void ConfigReader::finish() const {
  if (!node_ || !node_.IsMap()) return;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    const std::string k = it->first.Scalar();
    if (read_->count(k)) continue;
    std::string valid;
    for (const auto& r : *read_) valid += (valid.empty() ? "" : ", ") + r;
    std::string kp = key_path(k);
    std::ostringstream os;
    os << state_->name;
    if (state_->overridden.count(kp)) os << " (--set " << kp << ")";
    else os << ":" << it->first.Mark().line + 1;
    os << ": unknown key '" << kp << "'; valid keys"
       << (path_.empty() ? "" : " under '" + path_ + "'") << ": " << (valid.empty() ? "(none)" : valid);
    throw ConfigError(os.str());
  }
}

}  // namespace conductor
