// Log lines (spdlog): levels, timestamps, one place to set the level (`--log-level` on every command).
// Diagnostics go to stderr as "[2026-11-30 20:15:03.123] [warning] ..."; command results stay on
// stdout and progress lines stay with the console sink. spdlog's headers are confined to log.cpp.
//
//   log_info("resuming ", dir, " from ", name);
//   log_warn("environment '", id, "' cannot snapshot its state");
#pragma once

#include <string>

#include "core/error.h"

namespace conductor {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

// "debug" | "info" | "warn" | "error" | "off"; throws conductor::Error naming the choices.
LogLevel parse_log_level(const std::string& name);
void set_log_level(LogLevel level);
LogLevel log_level();
void log_line(LogLevel level, const std::string& message);

template <class... Args>
void log_debug(const Args&... args) {
  if (log_level() <= LogLevel::kDebug) log_line(LogLevel::kDebug, detail::concat(args...));
}
template <class... Args>
void log_info(const Args&... args) {
  if (log_level() <= LogLevel::kInfo) log_line(LogLevel::kInfo, detail::concat(args...));
}
template <class... Args>
void log_warn(const Args&... args) {
  if (log_level() <= LogLevel::kWarn) log_line(LogLevel::kWarn, detail::concat(args...));
}
template <class... Args>
void log_error(const Args&... args) {
  if (log_level() <= LogLevel::kError) log_line(LogLevel::kError, detail::concat(args...));
}

}  // namespace conductor
