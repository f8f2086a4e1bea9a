// Helpers shared by the test suites.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <initializer_list>
#include <string>

#include "core/error.h"

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

// Runs f and expects a conductor::Error whose message contains every needle.
template <class F>
void expect_error(F&& f, std::initializer_list<std::string> needles) {
  try {
    f();
    ADD_FAILURE() << "no error thrown; expected one mentioning '" << *needles.begin() << "'";
  } catch (const Error& e) {
    for (const auto& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what() << "\n  missing: " << n;
  }
}
template <class F>
void expect_error(F&& f, const std::string& needle) {
  expect_error(std::forward<F>(f), {needle});
}

}  // namespace conductor::testing

// Skips the current test with a clear message when ../shared/data is absent.
#define CONDUCTOR_REQUIRE_SHARED_DATA(var)                                                   \
  const std::string var = ::conductor::testing::shared_data_dir();                           \
  if (var.empty()) GTEST_SKIP() << "../shared/data is absent: this test needs the public data"
