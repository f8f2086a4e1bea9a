#!/usr/bin/env bash
# The production loop on loopback: serve -> log -> import -> evaluate candidates off-policy, and the
# estimates compared with the candidates' true values (known here because the providers replay a
# full-information trace).
#
#   experiments/production-loop/run.sh [OUT_DIR]        (default: runs/production-loop)
#
#  1. a synthetic world (conductor traces synth) stands in for the providers' answers;
#  2. `conductor train` makes three one-step conductors on its train split: the served policy
#     (w_cost 30) and two candidates (w_cost 0: quality only; w_cost 300: cheap);
#  3. three replay servers speak the OpenAI, Anthropic and Gemini wire formats over HTTPS with a
#     self-signed CA made here with openssl; each worker is assigned to one of them;
#  4. `conductor serve` runs the served export with epsilon-greedy exploration (0.1), the decision
#     log on, and the gateway calling the replay servers with TLS verification against that CA;
#  5. `conductor bench traffic` sends test-split queries at a fixed rate and posts feedback for each
#     answer: the trace's quality of the worker that answered (0 when the call failed);
#  6. `conductor traces import --format jsonl` turns the logs into /decisions (feedback joined);
#  7. `conductor ope` evaluates each candidate on the logs, with 95% intervals and, from the
#     trace, the candidate's true value on the same queries.
#
# Environment: CONDUCTOR (binary, default build/bin/conductor), REQUESTS (default 10000), RATE
# (requests per second, default 250), STEPS (PPO steps per policy, default 20000), QUERIES (synthetic
# world size, default 4000), SEED (default 1).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
CONDUCTOR="${CONDUCTOR:-$root/build/bin/conductor}"
OUT="${1:-$root/runs/production-loop}"
REQUESTS="${REQUESTS:-10000}"
RATE="${RATE:-250}"
STEPS="${STEPS:-20000}"
QUERIES="${QUERIES:-4000}"
SEED="${SEED:-1}"

[ -x "$CONDUCTOR" ] || { echo "error: conductor binary not found at $CONDUCTOR (build it or set CONDUCTOR)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "error: the openssl binary is needed to make the loopback CA" >&2; exit 1; }
mkdir -p "$OUT"
pids=()
cleanup() { for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# Waits until a process has written its port into its log ("... 127.0.0.1:PORT...").
port_of() {  # LOGFILE PATTERN
  for _ in $(seq 1 600); do
    p="$(grep -o "$2://127.0.0.1:[0-9]*" "$1" 2>/dev/null | head -1 | sed 's/.*://')" || true
    [ -n "$p" ] && { echo "$p"; return 0; }
    sleep 0.1
  done
  echo "error: no port in $1" >&2; cat "$1" >&2; return 1
}

# 1. The world.
[ -f "$OUT/world.h5" ] || "$CONDUCTOR" traces synth --queries "$QUERIES" --seed "$SEED" --out "$OUT/world.h5"

# 2. Served policy and two candidates.
train() {  # NAME W_COST SEED
  local run="$OUT/$1"
  if [ ! -f "$run/checkpoints/latest" ]; then
    rm -rf "$run"
    "$CONDUCTOR" train "$here/conductor.yaml" --out "$run" --quiet \
      --set "env.traces=$OUT/world.h5" --set "env.reward.w_cost=$2" --set "seed=$3" --set "total_steps=$STEPS"
  fi
}
train served 30 "$SEED"
train candidate_quality 0 $((SEED + 1))
train candidate_cheap 300 $((SEED + 2))
"$CONDUCTOR" export --checkpoint "$OUT/served" --out "$OUT/served-export" --force >/dev/null

# 3. A CA and a certificate for 127.0.0.1, then one replay server per wire format.
tls="$OUT/tls"
mkdir -p "$tls"
if [ ! -f "$tls/srv.pem" ]; then
  ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
  openssl req -x509 $ec -keyout "$tls/ca.key" -out "$tls/ca.pem" -days 30 -subj "/CN=production-loop CA" 2>/dev/null
  openssl req $ec -keyout "$tls/srv.key" -out "$tls/srv.csr" -subj "/CN=127.0.0.1" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$tls/ext.cnf"
  openssl x509 -req -in "$tls/srv.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
    -out "$tls/srv.pem" -days 30 -extfile "$tls/ext.cnf" 2>/dev/null
fi
declare -A port
for api in openai anthropic gemini; do
  "$CONDUCTOR" replay-server --traces "$OUT/world.h5" --api "$api" --port 0 --speedup 100 \
    --tls-cert "$tls/srv.pem" --tls-key "$tls/srv.key" > "$OUT/replay-$api.log" 2>&1 &
  pids+=($!)
  port[$api]="$(port_of "$OUT/replay-$api.log" https)"
done

# 4. serve.yaml: workers spread over the three APIs; no fallback and no retries, so every answer
#    comes from the logged first call (a failed call is a failed request: quality 0).
workers="$(python3 -c 'import json,sys; print(" ".join(w["name"] if isinstance(w, dict) else w for w in json.load(open(sys.argv[1]))["world"]["workers"]))' \
  "$OUT/served-export/manifest.json" 2>/dev/null || true)"
if [ -z "$workers" ]; then
  workers="$("$CONDUCTOR" traces info "$OUT/world.h5" --json | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["models"]))')"
fi
{
  echo "server: {threads: 2}"
  echo "exploration: {epsilon: 0.1, seed: $SEED}"
  echo "log: {fsync_interval_s: 0}"
  echo "gateway:"
  echo "  threads: 2"
  echo "  retries: 0"
  echo "  fallback: false"
  echo "  call_timeout_s: 30"
  echo "  providers:"
  i=0
  apis=(openai anthropic gemini)
  for w in $workers; do
    api="${apis[$((i % 3))]}"
    base="https://127.0.0.1:${port[$api]}/v1"
    [ "$api" = gemini ] && base="https://127.0.0.1:${port[$api]}/v1beta"
    echo "    - {worker: \"$w\", api: $api, base_url: \"$base\", ca_file: \"$tls/ca.pem\"}"
    i=$((i + 1))
  done
} > "$OUT/serve.yaml"
rm -rf "$OUT/logs"
"$CONDUCTOR" serve --export "$OUT/served-export" --config "$OUT/serve.yaml" --port 0 --log-dir "$OUT/logs" \
  > "$OUT/serve.log" 2>&1 &
serve_pid=$!
pids+=($serve_pid)
serve_port="$(port_of "$OUT/serve.log" http)"

# 5. Traffic with feedback.
"$CONDUCTOR" bench traffic --url "http://127.0.0.1:$serve_port" --traces "$OUT/world.h5" --split test \
  --rate "$RATE" --requests "$REQUESTS" --duration 3600 --feedback --report-every 5 --seed "$SEED" \
  --json "$OUT/traffic.json" | tee "$OUT/traffic.txt"
curl -s "http://127.0.0.1:$serve_port/metrics" > "$OUT/metrics.txt" 2>/dev/null || true
kill -TERM "$serve_pid"
wait "$serve_pid" || true

# 6. Import the logs.
"$CONDUCTOR" traces import --format jsonl --input "$OUT/logs" --out "$OUT/logs.h5" 2>&1 | tee "$OUT/import.txt"

# 7. OPE of the candidates (and of the served policy itself, as a check) against their true values.
for c in candidate_quality candidate_cheap served; do
  "$CONDUCTOR" ope --checkpoint "$OUT/$c" --logs "$OUT/logs.h5" --traces "$OUT/world.h5" --report "$OUT/ope-$c" \
    --ci bootstrap --bootstrap 500 --seed "$SEED" > /dev/null
done
python3 - "$OUT" <<'PY' | tee "$OUT/table.md"
import json, sys
out = sys.argv[1]
print("| policy | metric | true value | estimator | estimate | 95% interval | covers |")
print("|---|---|---:|---|---:|---|---|")
for c in ["candidate_quality", "candidate_cheap", "served"]:
    r = json.load(open(f"{out}/ope-{c}/report.json"))
    for metric in ["quality", "reward"]:
        m = r["metrics"][metric] if "metrics" in r else r[metric]
        t = m["true_value"]
        for est in ["ips", "snips", "dr"]:
            e = m["estimates"][est]
            print(f"| {c} | {metric} | {t:.4f} | {est} | {e['value']:.4f} | [{e['ci_low']:.4f}, {e['ci_high']:.4f}] | "
                  f"{'yes' if e.get('covers_true_value') else 'NO'} |")
PY
echo "table: $OUT/table.md"

# 8. Retrain from the logs: a warm start that imitates the logged first calls weighted by their
#    outcome (bc_warmstart.logs), alone ("offline": the RL learning rate is 0) and followed by the
#    served policy's PPO run ("retrained"); scored with the served policy by full-information replay
#    on the validation split, which no logged request came from.
retrain() {  # NAME EXTRA_SET...
  local run="$OUT/$1"; shift
  rm -rf "$run"
  "$CONDUCTOR" train "$here/conductor.yaml" --out "$run" --quiet \
    --set "env.traces=$OUT/world.h5" --set "env.reward.w_cost=30" --set "seed=$SEED" \
    --set bc_warmstart.enabled=true --set "bc_warmstart.logs=$OUT/logs.h5" "$@"
}
retrain offline --set ppo.learning_rate=0 --set total_steps=1024
retrain retrained --set "total_steps=$STEPS"
"$CONDUCTOR" eval --checkpoint "$OUT/served" --checkpoint "$OUT/offline" --checkpoint "$OUT/retrained" \
  --label served --label offline --label retrained --traces "$OUT/world.h5" --split validation \
  --report "$OUT/eval-retrain" --aiq-bootstrap 0 --seed "$SEED" > /dev/null
python3 - "$OUT" <<'PY' | tee "$OUT/retrain.md"
import json, sys
r = json.load(open(f"{sys.argv[1]}/eval-retrain/report.json"))
p = r["policies"]
print("| policy (validation split) | reward (w_cost 30) | quality | cost_usd |")
print("|---|---:|---:|---:|")
for name, key in [("served", "conductor"), ("offline", "conductor@offline"), ("retrained", "conductor@retrained"),
                  ("best single worker", "best_single"), ("router", "router"), ("oracle", "oracle")]:
    m = p[key]
    print(f"| {name} | {m['quality'] - 30 * m['cost_usd']:.4f} | {m['quality']:.4f} | {m['cost_usd']:.6f} |")
PY
