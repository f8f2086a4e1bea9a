// Latency shapes fitted to measured requests (llmperf's per-request records, e.g.
// ../shared/data/llmperf/individual/together_70b.json).
//
// Per file: a lognormal time to first token and a lognormal decode throughput (maximum likelihood:
// mu = mean of log x, sigma = population sd of log x, divisor n), plus the error rate. A request is
// successful when its error_code is null; only successful requests enter the latency fits.
// Decode throughput of a request = number_output_tokens / (end_to_end_latency_s - ttft_s), so that
// ttft + tokens / throughput reproduces the measured end-to-end latency (llmperf's own
// request_output_throughput_token_per_s divides by the end-to-end time, TTFT included).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace conductor {

struct LognormalFit {
  double mu = 0.0;
  double sigma = 0.0;
  std::size_t n = 0;
};

// MLE of a lognormal on positive samples; throws conductor::Error naming `what` when a value is not
// finite and positive or when `x` is empty.
LognormalFit fit_lognormal(const std::vector<double>& x, const std::string& what = "sample");


struct LatencyFit {
  std::string file;       // file name, e.g. "together_70b.json"
  int n_requests = 0;
  int n_ok = 0;
  int n_rate_limited = 0;  // error_code 429
  int n_other_errors = 0;  // any other non-null error_code
  int n_throughput_excluded = 0;  // successful requests with end_to_end <= ttft (no decode time)
  LognormalFit ttft;        // seconds
  LognormalFit throughput;  // decode tokens per second
  double mean_output_tokens = 0.0;
  double ttft_p50 = 0.0, ttft_p95 = 0.0;  // seconds, successful requests
  double e2e_p50 = 0.0, e2e_p95 = 0.0;

  double error_rate() const { return n_requests ? double(n_requests - n_ok) / n_requests : 0.0; }
  double rate_limit_rate() const { return n_requests ? double(n_rate_limited) / n_requests : 0.0; }
  double server_error_rate() const { return n_requests ? double(n_other_errors) / n_requests : 0.0; }
};

// Fits one llmperf JSON file (a list of request records). Throws conductor::Error naming the file,
// the record index and the field when the file is not a list of records with the expected fields.
LatencyFit fit_llmperf_file(const std::string& path);
// Fits every *.json in `dir`, sorted by file name; throws if there is none.
std::vector<LatencyFit> fit_llmperf_dir(const std::string& dir);

// A fixed-width text table, one row per fit.
std::string format_latency_table(const std::vector<LatencyFit>& fits);
// YAML: a mapping file name -> {ttft_mu, ttft_sigma, throughput_mu, throughput_sigma, ...}, the
// latency block a catalog worker copies.
std::string format_latency_yaml(const std::vector<LatencyFit>& fits, const std::string& source_dir);

}  // namespace conductor
