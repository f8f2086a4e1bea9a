#include "serve/metrics.h"

#include <cmath>
#include <sstream>

namespace conductor::serve {

namespace {
// Label values escaped as the exposition format requires (backslash, quote, newline).
std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '\\') o += "\\\\";
    else if (c == '"') o += "\\\"";
    else if (c == '\n') o += "\\n";
    else o += c;
  }
  return o;
}
std::unique_ptr<std::atomic<uint64_t>[]> zeros(std::size_t n) {
  auto p = std::make_unique<std::atomic<uint64_t>[]>(n);
  for (std::size_t i = 0; i < n; ++i) p[i].store(0);
  return p;
}
std::string fmt_double(double v) {
  std::ostringstream os;
  os.precision(10);
  os << v;
  return os.str();
}
}  // namespace

const char* feedback_result_name(FeedbackResult r) {
  switch (r) {
    case FeedbackResult::kRecorded: return "recorded";
    case FeedbackResult::kInvalid: return "invalid";
    case FeedbackResult::kUnknownRequest: return "unknown_request";
    case FeedbackResult::kDropped: return "dropped";
    case FeedbackResult::kLoggingOff: return "logging_off";
  }
  return "invalid";
}

const std::vector<double>& ServerMetrics::latency_buckets() {
  static const std::vector<double> b = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,  10.0, 30.0};
  return b;
}

ServerMetrics::ServerMetrics(std::vector<std::string> paths, std::vector<std::string> actions,
                             std::vector<std::string> workers)
    : paths_(std::move(paths)), actions_(std::move(actions)), workers_(std::move(workers)) {
  paths_.push_back("other");
  for (std::size_t i = 0; i < paths_.size(); ++i) {
    auto slot = std::make_unique<PathSlot>();
    slot->by_status = zeros(kStatusSlots);
    slot->buckets = zeros(latency_buckets().size() + 1);
    path_slots_.push_back(std::move(slot));
  }
  decisions_ = zeros(actions_.size() + 1);
  worker_calls_ = zeros(workers_.size() + 1);
  worker_errors_ = zeros((workers_.size() + 1) * kUpstreamErrorKinds);
  worker_retries_ = zeros(workers_.size() + 1);
  feedback_ = zeros(kFeedbackResults);
}

int ServerMetrics::path_index(const std::string& path) const {
  for (std::size_t i = 0; i + 1 < paths_.size(); ++i)
    if (paths_[i] == path) return static_cast<int>(i);
  return static_cast<int>(paths_.size()) - 1;
}

void ServerMetrics::observe_response(const std::string& path, int status, double seconds) {
  PathSlot& s = *path_slots_[path_index(path)];
  if (status >= 0 && status < kStatusSlots) s.by_status[status].fetch_add(1, std::memory_order_relaxed);
  const auto& b = latency_buckets();
  std::size_t k = 0;
  while (k < b.size() && seconds > b[k]) ++k;
  s.buckets[k].fetch_add(1, std::memory_order_relaxed);
  s.sum_ns.fetch_add(static_cast<uint64_t>(std::max(0.0, seconds) * 1e9), std::memory_order_relaxed);
  s.count.fetch_add(1, std::memory_order_relaxed);
}

void ServerMetrics::count_decision(int action) {
  if (action >= 0 && action < static_cast<int>(actions_.size()))
    decisions_[action].fetch_add(1, std::memory_order_relaxed);
}
void ServerMetrics::count_worker_call(int worker) {
  if (worker >= 0 && worker < static_cast<int>(workers_.size()))
    worker_calls_[worker].fetch_add(1, std::memory_order_relaxed);
}
void ServerMetrics::count_worker_error(int worker, UpstreamError kind) {
  if (worker >= 0 && worker < static_cast<int>(workers_.size()))
    worker_errors_[worker * kUpstreamErrorKinds + static_cast<int>(kind)].fetch_add(1, std::memory_order_relaxed);
}
void ServerMetrics::count_worker_retry(int worker) {
  if (worker >= 0 && worker < static_cast<int>(workers_.size()))
    worker_retries_[worker].fetch_add(1, std::memory_order_relaxed);
}
void ServerMetrics::count_feedback(FeedbackResult r) {
  feedback_[static_cast<int>(r)].fetch_add(1, std::memory_order_relaxed);
}
uint64_t ServerMetrics::worker_errors(int worker, UpstreamError kind) const {
  if (worker < 0 || worker >= static_cast<int>(workers_.size())) return 0;
  return worker_errors_[worker * kUpstreamErrorKinds + static_cast<int>(kind)].load();
}
uint64_t ServerMetrics::feedback(FeedbackResult r) const { return feedback_[static_cast<int>(r)].load(); }

uint64_t ServerMetrics::requests(const std::string& path, int status) const {
  if (status < 0 || status >= kStatusSlots) return 0;
  return path_slots_[path_index(path)]->by_status[status].load();
}

std::string ServerMetrics::prometheus_text() const {
  std::ostringstream o;
  o << "# HELP conductor_http_requests_total HTTP responses by request path and status code.\n"
    << "# TYPE conductor_http_requests_total counter\n";
  for (std::size_t p = 0; p < paths_.size(); ++p)
    for (int st = 0; st < kStatusSlots; ++st) {
      const uint64_t v = path_slots_[p]->by_status[st].load(std::memory_order_relaxed);
      if (v) o << "conductor_http_requests_total{path=\"" << esc(paths_[p]) << "\",code=\"" << st << "\"} " << v << "\n";
    }
  o << "# HELP conductor_http_request_duration_seconds Time from a complete request to its response.\n"
    << "# TYPE conductor_http_request_duration_seconds histogram\n";
  const auto& b = latency_buckets();
  for (std::size_t p = 0; p < paths_.size(); ++p) {
    const PathSlot& s = *path_slots_[p];
    uint64_t cum = 0;
    const std::string lab = "path=\"" + esc(paths_[p]) + "\"";
    for (std::size_t k = 0; k <= b.size(); ++k) {
      cum += s.buckets[k].load(std::memory_order_relaxed);
      o << "conductor_http_request_duration_seconds_bucket{" << lab << ",le=\""
        << (k < b.size() ? fmt_double(b[k]) : std::string("+Inf")) << "\"} " << cum << "\n";
    }
    o << "conductor_http_request_duration_seconds_sum{" << lab << "} "
      << fmt_double(static_cast<double>(s.sum_ns.load()) * 1e-9) << "\n";
    o << "conductor_http_request_duration_seconds_count{" << lab << "} " << s.count.load() << "\n";
  }
  o << "# HELP conductor_route_decisions_total First actions chosen by the conductor.\n"
    << "# TYPE conductor_route_decisions_total counter\n";
  for (std::size_t a = 0; a < actions_.size(); ++a)
    o << "conductor_route_decisions_total{action=\"" << esc(actions_[a]) << "\"} " << decisions_[a].load() << "\n";
  o << "# HELP conductor_worker_calls_total Calls made to each worker by the gateway.\n"
    << "# TYPE conductor_worker_calls_total counter\n";
  for (std::size_t w = 0; w < workers_.size(); ++w)
    o << "conductor_worker_calls_total{worker=\"" << esc(workers_[w]) << "\"} " << worker_calls_[w].load() << "\n";
  o << "# HELP conductor_worker_errors_total Failed worker calls by kind.\n"
    << "# TYPE conductor_worker_errors_total counter\n";
  for (std::size_t w = 0; w < workers_.size(); ++w)
    for (int k = 0; k < kUpstreamErrorKinds; ++k)
      o << "conductor_worker_errors_total{worker=\"" << esc(workers_[w]) << "\",kind=\""
        << upstream_error_name(static_cast<UpstreamError>(k)) << "\"} "
        << worker_errors_[w * kUpstreamErrorKinds + k].load() << "\n";
  o << "# HELP conductor_worker_retries_total Repeated attempts at a worker after a retryable failure.\n"
    << "# TYPE conductor_worker_retries_total counter\n";
  for (std::size_t w = 0; w < workers_.size(); ++w)
    o << "conductor_worker_retries_total{worker=\"" << esc(workers_[w]) << "\"} " << worker_retries_[w].load() << "\n";
  o << "# HELP conductor_feedback_total POST /v1/feedback requests by outcome.\n"
    << "# TYPE conductor_feedback_total counter\n";
  for (int r = 0; r < kFeedbackResults; ++r)
    o << "conductor_feedback_total{result=\"" << feedback_result_name(static_cast<FeedbackResult>(r)) << "\"} "
      << feedback_[r].load() << "\n";
  if (in_flight_) {
    o << "# HELP conductor_in_flight_requests Requests being handled.\n"
      << "# TYPE conductor_in_flight_requests gauge\n"
      << "conductor_in_flight_requests " << in_flight_() << "\n";
  }
  for (const auto& fn : extra_) o << fn();
  return o.str();
}

}  // namespace conductor::serve
