// Errors and internal checks shared by every Conductor library.
//
// Input edges (config files, trace files, requests) throw conductor::Error with the offending file,
// position and value in the message; internal invariants use CONDUCTOR_CHECK, which throws
// conductor::InternalError naming the source line (never silently continues).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace conductor {

// A user-facing error: the message alone must tell the user what was wrong and where.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A broken internal invariant: a bug in Conductor, not in the user's input.
class InternalError : public std::logic_error {
 public:
  explicit InternalError(const std::string& what) : std::logic_error(what) {}
};

namespace detail {
template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(detail::concat(args...));
}

}  // namespace conductor

#define CONDUCTOR_CHECK(cond, ...)                                                              \
  do {                                                                                          \
    if (!(cond))                                                                                \
      throw ::conductor::InternalError(::conductor::detail::concat(                            \
          __FILE__, ":", __LINE__, ": check failed: " #cond " ", ##__VA_ARGS__));               \
  } while (0)
