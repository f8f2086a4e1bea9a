#!/usr/bin/env bash
# Load test of POST /v1/route with wrk (Debian package `wrk`) against a running `conductor serve`.
#   bench/serve_load.sh [PORT=8080] [DURATION=10s] [CONNECTIONS="16 64"]
# Prints wrk's throughput and latency distribution (p50/p90/p99) per connection count.
set -euo pipefail
PORT=${1:-8080}
DURATION=${2:-10s}
CONNECTIONS=${3:-"16 64"}
LUA=$(mktemp --suffix=.lua)
trap 'rm -f "$LUA"' EXIT
cat > "$LUA" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"query": "A train leaves at 3pm travelling 60 km/h; another leaves at 4pm at 90 km/h. When does the second catch up?"}'
done = function(summary, latency, requests)
  io.write(string.format("requests/s %.0f  p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  non-2xx %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, summary.errors.status))
end
LUA
curl -sf "http://127.0.0.1:${PORT}/healthz" > /dev/null || { echo "no server on 127.0.0.1:${PORT}" >&2; exit 1; }
for c in $CONNECTIONS; do
  echo "== ${c} connections"
  wrk -t1 -c"$c" -d"$DURATION" --latency -s "$LUA" "http://127.0.0.1:${PORT}/v1/route" | tail -1
done
