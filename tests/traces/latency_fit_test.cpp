// Tests of traces/latency_fit: the lognormal MLE on hand-made samples, the llmperf record parser on a
// hand-written file, its errors, and (with ../shared/data) fits checked against numbers computed
// independently in Python.
#include "traces/latency_fit.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/atomic_file.h"
#include "core/error.h"
#include "tests/test_util.h"

namespace conductor {
namespace {

TEST(LognormalFit, MleOfHandMadeSamples) {
  // logs {0, 1, 2}: mu = 1, sigma = sqrt((1 + 0 + 1) / 3) = sqrt(2/3) (MLE divides by n, not n - 1).
  LognormalFit f = fit_lognormal({1.0, std::exp(1.0), std::exp(2.0)});
  EXPECT_NEAR(f.mu, 1.0, 1e-12);
  EXPECT_NEAR(f.sigma, std::sqrt(2.0 / 3.0), 1e-12);
  EXPECT_EQ(f.n, 3u);
  // logs {ln 2, 3 ln 2}: mu = 2 ln 2, sigma = ln 2.
  f = fit_lognormal({2.0, 8.0});
  EXPECT_NEAR(f.mu, 2.0 * std::log(2.0), 1e-12);
  EXPECT_NEAR(f.sigma, std::log(2.0), 1e-12);
  // A constant sample has sigma 0.
  f = fit_lognormal({3.0, 3.0, 3.0});
  EXPECT_NEAR(f.mu, std::log(3.0), 1e-12);
  EXPECT_EQ(f.sigma, 0.0);
}

TEST(LognormalFit, RejectsNonPositiveAndEmpty) {
  EXPECT_THROW(fit_lognormal({}), Error);
  try {
    fit_lognormal({1.0, 0.0}, "ttft");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ttft[1]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(fit_lognormal({1.0, -2.0}), Error);
  EXPECT_THROW(fit_lognormal({1.0, std::nan("")}), Error);
}

TEST(LlmperfFit, HandWrittenFile) {
  const std::string dir = testing::temp_dir();
  // Two successes: ttft 0.5 and 2.0 s (logs -ln2, ln2: mu 0, sigma ln2); decode throughput
  // 100 / (2.5 - 0.5) = 50 and 400 / (4.0 - 2.0) = 200 tokens/s (mu ln 100, sigma ln 2).
  // One 429 and one other error (-100), which enter the error counts only.
  write_file_atomic(dir + "/host_7b.json", R"([
    {"error_code": null, "ttft_s": 0.5, "end_to_end_latency_s": 2.5, "number_output_tokens": 100},
    {"error_code": 429, "ttft_s": 0, "end_to_end_latency_s": 0, "number_output_tokens": 1},
    {"error_code": null, "ttft_s": 2.0, "end_to_end_latency_s": 4.0, "number_output_tokens": 400},
    {"error_code": -100, "error_msg": "Output too few tokens", "ttft_s": 0.8}
  ])");
  const LatencyFit f = fit_llmperf_file(dir + "/host_7b.json");
  EXPECT_EQ(f.file, "host_7b.json");
  EXPECT_EQ(f.n_requests, 4);
  EXPECT_EQ(f.n_ok, 2);
  EXPECT_EQ(f.n_rate_limited, 1);
  EXPECT_EQ(f.n_other_errors, 1);
  EXPECT_DOUBLE_EQ(f.error_rate(), 0.5);
  EXPECT_DOUBLE_EQ(f.rate_limit_rate(), 0.25);
  EXPECT_NEAR(f.ttft.mu, 0.0, 1e-12);
  EXPECT_NEAR(f.ttft.sigma, std::log(2.0), 1e-12);
  EXPECT_NEAR(f.throughput.mu, std::log(100.0), 1e-12);
  EXPECT_NEAR(f.throughput.sigma, std::log(2.0), 1e-12);
  EXPECT_DOUBLE_EQ(f.mean_output_tokens, 250.0);
  EXPECT_DOUBLE_EQ(f.ttft_p50, 1.25);
  EXPECT_DOUBLE_EQ(f.e2e_p50, 3.25);

  const auto all = fit_llmperf_dir(dir);
  ASSERT_EQ(all.size(), 1u);
  const std::string yaml = format_latency_yaml(all, dir);
  EXPECT_NE(yaml.find("host_7b.json:\n  ttft_mu: 0.0000\n  ttft_sigma: 0.6931"), std::string::npos) << yaml;
  EXPECT_NE(format_latency_table(all).find("host_7b.json"), std::string::npos);
}

void expect_fit_error(const std::string& text, const std::string& needle) {
  const std::string path = testing::temp_dir() + "/bad.json";
  write_file_atomic(path, text);
  try {
    fit_llmperf_file(path);
    FAIL() << "expected an error containing " << needle;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  }
}

TEST(LlmperfFit, ErrorsNameFileRecordAndField) {
  expect_fit_error(R"({"not": "a list"})", "expected a JSON list");
  expect_fit_error("[", "invalid JSON");
  expect_fit_error(R"([{"error_code": null, "end_to_end_latency_s": 2, "number_output_tokens": 5}])",
                   "record [0]: missing field 'ttft_s'");
  expect_fit_error(R"([{"error_code": null, "ttft_s": 0.1, "end_to_end_latency_s": 2, "number_output_tokens": 5},
                       {"error_code": null, "ttft_s": "fast", "end_to_end_latency_s": 2, "number_output_tokens": 5}])",
                   "record [1]: field 'ttft_s': expected a number");
  expect_fit_error(R"([{"ttft_s": 0.1}])", "record [0]: missing field 'error_code'");
  expect_fit_error(R"([{"error_code": 429}])", "no successful request");
  expect_fit_error(R"([{"error_code": null, "ttft_s": 3, "end_to_end_latency_s": 2, "number_output_tokens": 5}])",
                   "record [0]: end_to_end_latency_s 2 < ttft_s 3");
  EXPECT_THROW(fit_llmperf_dir(testing::temp_dir() + "/nowhere"), Error);
}

// Expected values computed independently in Python 3 (statistics by hand, no numpy) from
// ../shared/data/llmperf/individual (ray-project/llmperf-leaderboard @ 27aa9b6):
//   ok = [r for r in d if r['error_code'] is None]
//   mu, sd of log(r['ttft_s']) and of log(r['number_output_tokens'] / (r['end_to_end_latency_s'] - r['ttft_s']))
//   (population sd, divisor n); type-7 quantiles of ttft_s.
TEST(LlmperfFit, MatchesIndependentPythonFitOnSharedData) {
  CONDUCTOR_REQUIRE_SHARED_DATA(data);
  const std::string dir = data + "/llmperf/individual/";
  LatencyFit f = fit_llmperf_file(dir + "together_70b.json");
  EXPECT_EQ(f.n_requests, 150);
  EXPECT_EQ(f.n_ok, 150);
  EXPECT_NEAR(f.ttft.mu, -0.4845199795, 1e-9);
  EXPECT_NEAR(f.ttft.sigma, 0.1424650254, 1e-9);
  EXPECT_NEAR(f.throughput.mu, 4.4447650386, 1e-9);
  EXPECT_NEAR(f.throughput.sigma, 0.1329304790, 1e-9);
  EXPECT_NEAR(f.ttft_p50, 0.6352748080, 1e-9);
  EXPECT_NEAR(f.ttft_p95, 0.7701076469, 1e-9);
  EXPECT_NEAR(f.mean_output_tokens, 158.5933333333, 1e-9);

  f = fit_llmperf_file(dir + "bedrock_13b.json");  // 97 of 150 requests failed ("Output too few tokens")
  EXPECT_EQ(f.n_ok, 53);
  EXPECT_EQ(f.n_other_errors, 97);
  EXPECT_EQ(f.n_rate_limited, 0);
  EXPECT_NEAR(f.ttft.mu, -1.1889690086, 1e-9);
  EXPECT_NEAR(f.ttft.sigma, 0.3760598064, 1e-9);
  EXPECT_NEAR(f.throughput.mu, 3.6999778836, 1e-9);
  EXPECT_NEAR(f.throughput.sigma, 0.0048363691, 1e-9);

  f = fit_llmperf_file(dir + "perplexity_70b.json");  // 2 HTTP 429s
  EXPECT_EQ(f.n_rate_limited, 2);
  EXPECT_NEAR(f.rate_limit_rate(), 2.0 / 150.0, 1e-12);
  EXPECT_NEAR(f.ttft.mu, -0.9006499365, 1e-9);
  EXPECT_NEAR(f.throughput.mu, 3.4959202056, 1e-9);

  EXPECT_EQ(fit_llmperf_dir(dir).size(), 19u);
}

}  // namespace
}  // namespace conductor
