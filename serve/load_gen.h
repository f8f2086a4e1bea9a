// A closed-loop HTTP load generator for `conductor bench serve`: `connections` keep-alive
// connections, each sending the same request again as soon as the previous answer arrived, on one
// event-loop thread. Reports throughput and latency percentiles (linear interpolation, core/stats.h) after a warm-up.
#pragma once

#include <cstdint>
#include <string>

namespace conductor::serve {

struct LoadResult {
  int connections = 0;
  double seconds = 0.0;     // measured window (after warm-up)
  uint64_t requests = 0;    // completed in the window
  uint64_t non_200 = 0;     // of which not 200
  double requests_per_s = 0.0;
  double p50_ms = 0.0, p90_ms = 0.0, p99_ms = 0.0, max_ms = 0.0;
};

// Throws conductor::Error when it cannot connect.
LoadResult run_load(const std::string& host, int port, const std::string& path, const std::string& body,
                    int connections, double duration_s, double warmup_s);

}  // namespace conductor::serve
