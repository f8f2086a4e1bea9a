#!/usr/bin/env bash
# Soak of the gateway: steady open-loop chat traffic for DURATION seconds against replay providers
# that inject FAIL_RATE failures (500 "injected failure"), with the decision log on. Prints one line
# per interval (sent, answered, p50/p99/max latency, the server's resident memory, statuses) and a
# summary: RSS growth after warm-up, non-200 answers versus the injected failures, p99 per interval.
#
#   bench/gateway_soak.sh EXPORT_DIR TRACES.h5 [OUT_DIR]
#
# Environment: CONDUCTOR (default build/bin/conductor), DURATION (default 600), RATE (requests per
# second, default 50), FAIL_RATE (default 0.01), WARMUP (seconds excluded from the RSS baseline,
# default 60), SPEEDUP (replay latency divisor, default 100).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
CONDUCTOR="${CONDUCTOR:-$root/build/bin/conductor}"
EXPORT="${1:?usage: bench/gateway_soak.sh EXPORT_DIR TRACES.h5 [OUT_DIR]}"
TRACES="${2:?usage: bench/gateway_soak.sh EXPORT_DIR TRACES.h5 [OUT_DIR]}"
OUT="${3:-$root/runs/gateway-soak}"
DURATION="${DURATION:-600}"
RATE="${RATE:-50}"
FAIL_RATE="${FAIL_RATE:-0.01}"
WARMUP="${WARMUP:-60}"
SPEEDUP="${SPEEDUP:-100}"
mkdir -p "$OUT"
pids=()
cleanup() { for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
port_of() {
  for _ in $(seq 1 600); do
    p="$(grep -o "$2://127.0.0.1:[0-9]*" "$1" 2>/dev/null | head -1 | sed 's/.*://')" || true
    [ -n "$p" ] && { echo "$p"; return 0; }
    sleep 0.1
  done
  echo "error: no port in $1" >&2; cat "$1" >&2; return 1
}

"$CONDUCTOR" replay-server --traces "$TRACES" --port 0 --speedup "$SPEEDUP" --fail-rate "$FAIL_RATE" \
  > "$OUT/replay.log" 2>&1 &
pids+=($!)
rport="$(port_of "$OUT/replay.log" http)"
workers="$(python3 -c 'import json,sys; print(" ".join(w["name"] if isinstance(w, dict) else w for w in json.load(open(sys.argv[1]))["world"]["workers"]))' "$EXPORT/manifest.json")"
{
  echo "gateway:"
  echo "  threads: 2"
  echo "  retries: 1"
  echo "  backoff_initial_s: 0.05"
  echo "  circuit_breaker: {failures: 50, cooldown_s: 5}"
  echo "  providers:"
  for w in $workers; do echo "    - {worker: \"$w\", base_url: \"http://127.0.0.1:$rport/v1\"}"; done
} > "$OUT/serve.yaml"
rm -rf "$OUT/logs"
"$CONDUCTOR" serve --export "$EXPORT" --config "$OUT/serve.yaml" --port 0 --log-dir "$OUT/logs" > "$OUT/serve.log" 2>&1 &
spid=$!
pids+=($spid)
sport="$(port_of "$OUT/serve.log" http)"

"$CONDUCTOR" bench traffic --url "http://127.0.0.1:$sport" --traces "$TRACES" --split test --rate "$RATE" \
  --duration "$DURATION" --report-every 30 --server-pid "$spid" --json "$OUT/soak.json" | tee "$OUT/soak.txt"
curl -s "http://127.0.0.1:$rport/healthz" > "$OUT/replay-health.json"
curl -s "http://127.0.0.1:$sport/metrics" > "$OUT/metrics.txt"
python3 - "$OUT" "$WARMUP" <<'PY'
import json, sys
out, warmup = sys.argv[1], float(sys.argv[2])
s = json.load(open(f"{out}/soak.json"))
h = json.load(open(f"{out}/replay-health.json"))
iv = [i for i in s["intervals"] if i["rss_kib"] > 0]
after = [i for i in iv if i["t_end_s"] > warmup]
base = after[0]["rss_kib"] if after else float("nan")
peak = max(i["rss_kib"] for i in after) if after else float("nan")
p99 = [round(i["p99_ms"], 1) for i in s["intervals"]]
non200 = sum(v for k, v in s["statuses"].items() if k != "200")
retries = sum(float(l.split()[-1]) for l in open(f"{out}/metrics.txt") if l.startswith("conductor_worker_retries_total{"))
print(f"requests {s['requests']}, statuses {s['statuses']}; provider calls {h['requests']}, injected failures "
      f"{h['injected_failures']}, gateway retries {retries:.0f}, non-200 answers {non200}")
print(f"server RSS after warm-up ({warmup:.0f} s): {base} KiB -> peak {peak} KiB ({100 * (peak - base) / base:+.1f}%)")
print(f"p99 per interval (ms): {p99}")
PY
