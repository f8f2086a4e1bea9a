// The one registry shape: components created by string id (environments, policy kinds, algorithms).
//
// A Registry<Entry> maps ids to entries. Built-in entries are added by the `builtins` function on
// first use (explicit calls rather than static initializers: static libraries drop unreferenced
// objects); later add()s of the same id replace the earlier entry (tests register toys). Lookups
// return null for an unknown id, so each caller words its own error (a config key, a file), with
// known() listing the ids. Entries are stable: a returned pointer stays valid until its id is
// registered again. Thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace conductor {

template <class Entry>
class Registry {
 public:
  explicit Registry(std::function<void(Registry&)> builtins) : builtins_(std::move(builtins)) {}

  void add(const std::string& id, Entry entry) {
    if (!loading_builtins_) load_builtins();  // builtins_ itself adds through here
    std::lock_guard<std::mutex> lock(mutex_);
    if (!table_.count(id)) order_.push_back(id);
    table_.erase(id);
    table_.emplace(id, std::move(entry));
  }
  // The entry of `id`, or null.
  const Entry* find(const std::string& id) {
    load_builtins();
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = table_.find(id);
    return it == table_.end() ? nullptr : &it->second;
  }
  // Registered ids in sorted order.
  std::vector<std::string> ids() {
    load_builtins();
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> v;
    for (const auto& kv : table_) v.push_back(kv.first);
    return v;
  }
  // Registered ids in the order of their first registration (built-ins first, in their list's order).
  std::vector<std::string> in_order() {
    load_builtins();
    std::lock_guard<std::mutex> lock(mutex_);
    return order_;
  }
  // The ids as "a, b, c" for error messages ("" when none).
  std::string known() {
    std::string s;
    for (const auto& id : ids()) s += (s.empty() ? "" : ", ") + id;
    return s;
  }

 private:
  void load_builtins() {
    std::call_once(once_, [this] {
      loading_builtins_ = true;
      if (builtins_) builtins_(*this);
      loading_builtins_ = false;
    });
  }

  std::function<void(Registry&)> builtins_;
  std::once_flag once_;
  std::atomic<bool> loading_builtins_{false};
  std::mutex mutex_;
  std::map<std::string, Entry> table_;
  std::vector<std::string> order_;
};

}  // namespace conductor
