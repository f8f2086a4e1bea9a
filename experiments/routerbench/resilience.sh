#!/usr/bin/env bash
# Resilience table (issue 14): on RouterBench test, the conductor trained without faults
# (conductor.yaml) and one trained with randomized pools and outages (resilient.yaml), both at
# w_cost W (default 100), next to the router and the cascade, when the conductor's most-used
# worker is down (unannounced and announced), 5x slower, or 3x (and 10x) the price. `conductor eval
# --scenario` applies each fault to every policy alike (docs/evaluation.md).
#
#   experiments/routerbench/resilience.sh [OUT]      # SEED, W_COST, DATA as in run.sh; STEPS (3M)
#   SPLIT=validation DATA_DIR=<carved csvs> ...        # the same table on a validation split carved
#                                                      # from train (experiments/llmrouter/carve_validation.py)
#   EXTRA="key=value ..."                             # extra --set for the resilient conductor only
#   RESILIENT_CONFIG=file.yaml                        # another config for it (default resilient.yaml)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
CONDUCTOR="${CONDUCTOR:-$root/build/bin/conductor}"
DATA="${DATA:-$root/../shared/data}"
OUT="${1:-$root/runs/routerbench-resilience}"
W_COST="${W_COST:-100}"
STEPS="${STEPS:-3000000}"
SEED="${SEED:-1}"
SPLIT="${SPLIT:-test}"
DATA_DIR="${DATA_DIR:-$DATA/routerbench}"
RESILIENT_CONFIG="${RESILIENT_CONFIG:-$here/resilient.yaml}"
extra=()
for kv in ${EXTRA:-}; do extra+=(--set "$kv"); done

[ -x "$CONDUCTOR" ] || { echo "error: conductor binary not found at $CONDUCTOR (build it or set CONDUCTOR)" >&2; exit 1; }
[ -d "$DATA_DIR" ] || { echo "error: $DATA_DIR is absent: this experiment needs the public RouterBench slice" >&2; exit 1; }
mkdir -p "$OUT"
[ -f "$OUT/routerbench.h5" ] || "$CONDUCTOR" traces import --format routerbench --input "$DATA_DIR" \
  --pricing "$DATA/pricing/model_prices_and_context_window.2025-02-06.json" --out "$OUT/routerbench.h5"

for variant in conductor resilient; do
  run="$OUT/$variant"
  if [ ! -f "$run/checkpoints/latest" ]; then
    rm -rf "$run"
    more=()
    config="$here/conductor.yaml"
    [ "$variant" = resilient ] && { more=("${extra[@]}"); config="$RESILIENT_CONFIG"; }
    "$CONDUCTOR" train "$config" --out "$run" --quiet --set "env.traces=$OUT/routerbench.h5" \
      --set "env.reward.w_cost=$W_COST" --set "total_steps=$STEPS" --set "seed=$SEED" --set final_eval.enabled=false \
      ${more[@]+"${more[@]}"}
  fi
done

evaluate() {  # SCENARIO
  local name="${1//:/_}"
  local dir="$OUT/eval-${name//\//_}"
  "$CONDUCTOR" eval --checkpoint "$OUT/conductor" --checkpoint "$OUT/resilient" --label plain --label resilient \
    --traces "$OUT/routerbench.h5" --split "$SPLIT" --scenario "$1" --report "$dir" --aiq-bootstrap 0 --seed "$SEED" > /dev/null
}
evaluate none
# The plain conductor's most-used worker without faults.
W="$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["policies"]["conductor"]["call_share"]; print(max(s, key=s.get))' \
  "$OUT/eval-none/report.json")"
echo "most-used worker of the plain conductor: $W"
scenarios=(none "down:$W" "down-announced:$W" "slow:$W:5" "price:$W:3" "price:$W:10")
for sc in "${scenarios[@]:1}"; do evaluate "$sc"; done

python3 - "$OUT" "$W_COST" "${scenarios[@]}" <<'PY' | tee "$OUT/resilience.md"
import json, sys
out, w = sys.argv[1], float(sys.argv[2])
print(f"| scenario | policy | quality | cost/query (USD) | reward (quality - {w:g} x cost) | latency p50 (s) | calls/query |")
print("|---|---|---:|---:|---:|---:|---:|")
for sc in sys.argv[3:]:
    r = json.load(open(f"{out}/eval-{sc.replace(':', '_').replace('/', '_')}/report.json"))
    for name, key in [("conductor (no faults in training)", "conductor"), ("conductor (trained with faults)", "conductor@resilient"),
                      ("router", "router"), ("cascade", "cascade")]:
        m = r["policies"][key]
        print(f"| {sc} | {name} | {m['quality']:.4f} | {m['cost_usd']:.6f} | {m['quality'] - w * m['cost_usd']:.4f} | "
              f"{m['latency_p50_s']:.2f} | {m['calls_per_query']:.2f} |")
PY
echo "table: $OUT/resilience.md"
