#include "core/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>

namespace conductor {

namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> l = [] {
    auto lg = spdlog::stderr_logger_mt("conductor");
    lg->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
    lg->set_level(spdlog::level::trace);  // filtered by g_level before formatting
    lg->flush_on(spdlog::level::trace);
    return lg;
  }();
  return *l;
}

}  // namespace

LogLevel parse_log_level(const std::string& name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warn" || name == "warning") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  if (name == "off") return LogLevel::kOff;
  fail("--log-level: unknown level '", name, "' (expected debug, info, warn, error or off)");
}

void set_log_level(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel log_level() { return static_cast<LogLevel>(g_level.load()); }

void log_line(LogLevel level, const std::string& message) {
  switch (level) {
    case LogLevel::kDebug: logger().debug("{}", message); break;
    case LogLevel::kInfo: logger().info("{}", message); break;
    case LogLevel::kWarn: logger().warn("{}", message); break;
    case LogLevel::kError: logger().error("{}", message); break;
    case LogLevel::kOff: break;
  }
}

}  // namespace conductor
