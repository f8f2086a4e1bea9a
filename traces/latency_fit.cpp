#include "traces/latency_fit.h"

#include "core/stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_util.h"

namespace conductor {

LognormalFit fit_lognormal(const std::vector<double>& x, const std::string& what) {
  if (x.empty()) fail(what, ": cannot fit a lognormal to an empty sample");
  double sum = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!(std::isfinite(x[i]) && x[i] > 0.0))
      fail(what, "[", i, "]: value ", x[i], " is not a finite positive number (lognormal support)");
    sum += std::log(x[i]);
  }
  LognormalFit f;
  f.n = x.size();
  f.mu = sum / x.size();
  double ss = 0.0;
  for (double v : x) {
    const double d = std::log(v) - f.mu;
    ss += d * d;
  }
  f.sigma = std::sqrt(ss / x.size());
  return f;
}


namespace {
double number_field(const json& rec, const char* field, const std::string& where) {
  auto it = rec.find(field);
  if (it == rec.end()) fail(where, ": missing field '", field, "' (expected a number)");
  if (!it->is_number()) fail(where, ": field '", field, "': expected a number, got ", it->dump());
  const double v = it->get<double>();
  if (!std::isfinite(v)) fail(where, ": field '", field, "': expected a finite number");
  return v;
}
}  // namespace

LatencyFit fit_llmperf_file(const std::string& path) {
  const json doc = parse_json(read_file(path), path);
  if (!doc.is_array()) fail(path, ": expected a JSON list of request records, got ", doc.type_name());
  if (doc.empty()) fail(path, ": no request records");
  LatencyFit fit;
  fit.file = std::filesystem::path(path).filename().string();
  std::vector<double> ttft, tput, e2e;
  double out_sum = 0.0;
  for (std::size_t i = 0; i < doc.size(); ++i) {
    const json& rec = doc[i];
    const std::string where = path + ": record [" + std::to_string(i) + "]";
    if (!rec.is_object()) fail(where, ": expected an object, got ", rec.type_name());
    ++fit.n_requests;
    auto ec = rec.find("error_code");
    if (ec == rec.end()) fail(where, ": missing field 'error_code' (expected null or a number)");
    if (!ec->is_null()) {
      if (!ec->is_number()) fail(where, ": field 'error_code': expected null or a number, got ", ec->dump());
      if (ec->get<double>() == 429.0) ++fit.n_rate_limited;
      else ++fit.n_other_errors;
      continue;
    }
    ++fit.n_ok;
    const double t = number_field(rec, "ttft_s", where);
    const double total = number_field(rec, "end_to_end_latency_s", where);
    const double n_out = number_field(rec, "number_output_tokens", where);
    if (!(t > 0.0)) fail(where, ": field 'ttft_s': expected > 0 for a successful request, got ", t);
    if (total < t) fail(where, ": end_to_end_latency_s ", total, " < ttft_s ", t);
    if (!(n_out >= 1.0)) fail(where, ": field 'number_output_tokens': expected >= 1, got ", n_out);
    ttft.push_back(t);
    e2e.push_back(total);
    out_sum += n_out;
    if (total > t) tput.push_back(n_out / (total - t));
    else ++fit.n_throughput_excluded;
  }
  if (fit.n_ok == 0) fail(path, ": no successful request (every error_code is set): nothing to fit");
  fit.ttft = fit_lognormal(ttft, path + ": ttft_s");
  fit.throughput = fit_lognormal(tput, path + ": decode throughput");
  fit.mean_output_tokens = out_sum / fit.n_ok;
  fit.ttft_p50 = percentile(ttft, 50);
  fit.ttft_p95 = percentile(ttft, 95);
  fit.e2e_p50 = percentile(e2e, 50);
  fit.e2e_p95 = percentile(e2e, 95);
  return fit;
}

std::vector<LatencyFit> fit_llmperf_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(dir, ": not a directory (expected llmperf's individual/*.json)");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path().string());
  if (files.empty()) fail(dir, ": no *.json files");
  std::sort(files.begin(), files.end());
  std::vector<LatencyFit> out;
  for (const auto& f : files) out.push_back(fit_llmperf_file(f));
  return out;
}

std::string format_latency_table(const std::vector<LatencyFit>& fits) {
  std::ostringstream os;
  char buf[512];
  std::snprintf(buf, sizeof buf, "%-22s %5s %5s %7s %8s %8s %8s %8s %8s %8s %8s %9s %8s\n", "file", "n", "ok",
                "err", "ttft_mu", "ttft_sd", "ttft_p50", "ttft_p95", "tput_mu", "tput_sd", "tput_med",
                "out_mean", "e2e_p50");
  os << buf;
  for (const auto& f : fits) {
    std::snprintf(buf, sizeof buf,
                  "%-22s %5d %5d %7.4f %8.4f %8.4f %8.3f %8.3f %8.4f %8.4f %8.1f %9.1f %8.3f\n",
                  f.file.c_str(), f.n_requests, f.n_ok, f.error_rate(), f.ttft.mu, f.ttft.sigma, f.ttft_p50,
                  f.ttft_p95, f.throughput.mu, f.throughput.sigma, std::exp(f.throughput.mu),
                  f.mean_output_tokens, f.e2e_p50);
    os << buf;
  }
  return os.str();
}

std::string format_latency_yaml(const std::vector<LatencyFit>& fits, const std::string& source_dir) {
  std::ostringstream os;
  os << "# Lognormal MLE fits of llmperf per-request records in " << source_dir << "\n"
     << "# (conductor traces fit-latency). ttft in seconds, throughput in decode tokens/s.\n";
  char buf[512];
  for (const auto& f : fits) {
    std::snprintf(buf, sizeof buf,
                  "%s:\n  ttft_mu: %.4f\n  ttft_sigma: %.4f\n  throughput_mu: %.4f\n  throughput_sigma: %.4f\n"
                  "  n_requests: %d\n  n_ok: %d\n  rate_limit_rate: %.4f\n  server_error_rate: %.4f\n"
                  "  mean_output_tokens: %.1f\n",
                  f.file.c_str(), f.ttft.mu, f.ttft.sigma, f.throughput.mu, f.throughput.sigma, f.n_requests,
                  f.n_ok, f.rate_limit_rate(), f.server_error_rate(), f.mean_output_tokens);
    os << buf;
  }
  return os.str();
}

}  // namespace conductor
