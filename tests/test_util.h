// Helpers shared by the test suites.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace conductor::testing {

// ../shared/data, or "" when it is absent (as on a user's machine).
inline std::string shared_data_dir() {
  std::string d = CONDUCTOR_SHARED_DATA;
  if (const char* env = std::getenv("CONDUCTOR_SHARED_DATA")) d = env;
  return std::filesystem::is_directory(d) ? d : std::string();
}

// A fresh empty directory under the build tree, unique per test.
inline std::string temp_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path p = std::filesystem::path(CONDUCTOR_BINARY_DIR) / "test-tmp" /
                            (std::string(info->test_suite_name()) + "." + info->name());
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

}  // namespace conductor::testing

// Skips the current test with a clear message when ../shared/data is absent.
#define CONDUCTOR_REQUIRE_SHARED_DATA(var)                                                   \
  const std::string var = ::conductor::testing::shared_data_dir();                           \
  if (var.empty()) GTEST_SKIP() << "../shared/data is absent: this test needs the public data"
