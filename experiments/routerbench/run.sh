#!/usr/bin/env bash
# Reproduces the RouterBench headline table from scratch: import the public CSVs, train the conductor
# on the train split at several cost weights, evaluate every checkpoint and the baselines on the
# test split, and draw the frontier.
#
#   experiments/routerbench/run.sh [OUT_DIR]        (default: runs/routerbench)
#
# Environment: CONDUCTOR (binary, default build/bin/conductor), DATA (default ../shared/data),
# W_COSTS (cost weights per USD; the first one is the headline conductor, the router and cascade are
# tuned for it; default: 20 (chosen on validation), then the 1-1.5-2-3-5-7 series per decade from 3 to 10000),
# STEPS (environment steps per run, default 900000 as in conductor.yaml), SEED (default 1), ALGO (ppo, default, or grpo:
# the grpo section of conductor.yaml, Dr. GRPO), COVER_ROUNDS (default 2: rounds of extra cost weights when the
# frontier does not reach both ends of the cost range on the train split; 0 = off; SELECT=0 only),
# SELECT (default 1), PYTHON (default python3, standard library only: the validation carve).
#
# SELECT=1 (default): never below the router or the cascade (issue 28; experiments/selection/README.md).
# A validation split is carved from train (experiments/llmrouter/carve_validation.py, by sample id),
# and per cost weight PPO is trained next to imitations of the router's and the cascade's rules that
# read the router's inputs (env.observe_predictions), plus the router's imitation at its own sweep
# weights; `conductor eval --select-on validation` deploys per weight whichever did best on
# validation, and only that one is evaluated on test (experiments/selection/run.sh does the work;
# the report is OUT/report, PPO alone in OUT/report_ppo). SELECT=0: PPO alone on the whole train
# split, the configuration of the README's 2026-12-02 table.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
CONDUCTOR="${CONDUCTOR:-$root/build/bin/conductor}"
DATA="${DATA:-$root/../shared/data}"
OUT="${1:-$root/runs/routerbench}"
W_COSTS="${W_COSTS:-20 3 5 7 10 15 30 50 70 100 150 200 300 500 700 1000 1500 2000 3000 5000 10000}"
STEPS="${STEPS:-900000}"
ALGO="${ALGO:-ppo}"
SEED="${SEED:-1}"
SELECT="${SELECT:-1}"
PYTHON="${PYTHON:-python3}"

[ -x "$CONDUCTOR" ] || { echo "error: conductor binary not found at $CONDUCTOR (build it or set CONDUCTOR)" >&2; exit 1; }
[ -d "$DATA/routerbench" ] || { echo "error: $DATA/routerbench is absent: this experiment needs the public RouterBench slice" >&2; exit 1; }
mkdir -p "$OUT"
PRICING="$DATA/pricing/model_prices_and_context_window.2025-02-06.json"

if [ "$SELECT" = 1 ]; then
  command -v "$PYTHON" >/dev/null || { echo "error: $PYTHON not found (set PYTHON): the validation carve needs Python 3" >&2; exit 1; }
  "$PYTHON" "$root/experiments/llmrouter/carve_validation.py" --format routerbench --input "$DATA/routerbench" --out "$OUT/data"
  "$CONDUCTOR" traces import --format routerbench --input "$OUT/data" --pricing "$PRICING" --out "$OUT/routerbench.h5"
  extra=""
  [ "$ALGO" = ppo ] || extra="algo=$ALGO"
  CONDUCTOR="$CONDUCTOR" SEEDS="$SEED" W_COSTS="$W_COSTS" STEPS="$STEPS" EXTRA="$extra" \
    BC_EXTRA="env.observe_predictions=true" \
    "$root/experiments/selection/run.sh" "$OUT/routerbench.h5" "$here/conductor.yaml" "$OUT/selection"
  ln -sfn "$OUT/selection/s$SEED/report_selected" "$OUT/report"
  ln -sfn "$OUT/selection/s$SEED/report_ppo" "$OUT/report_ppo"
  echo "report: $OUT/report/report.md, $OUT/report/frontier.svg (PPO alone: $OUT/report_ppo/report.md)"
  exit 0
fi

# 1. Import (prices: LiteLLM table of 2025-02-06, which still prices the 2023-24 models).
"$CONDUCTOR" traces import --format routerbench --input "$DATA/routerbench" \
  --pricing "$PRICING" --out "$OUT/routerbench.h5"

# 2. Train one conductor per cost weight on the train split only.
ckpts=()
labels=()
weights=()
train_weight() {
  local w="$1" run="$OUT/conductor_w$1"
  if [ ! -f "$run/checkpoints/latest" ]; then
    rm -rf "$run"
    "$CONDUCTOR" train "$here/conductor.yaml" --out "$run" \
      --set "env.traces=$OUT/routerbench.h5" --set "env.reward.w_cost=$w" \
      --set "total_steps=$STEPS" --set "seed=$SEED" --set "algo=$ALGO"
  fi
  ckpts+=(--checkpoint "$run")
  labels+=(--label "w_cost=$w")
  weights+=("$w")
}
for w in $W_COSTS; do train_weight "$w"; done

# 2b. Coverage, checked on the TRAIN split (never on test): AIQ counts 0 below the frontier's cheapest
#     point and its best quality flat above its dearest one, and the routers sweep cost weights from 0
#     to 1e5. When `conductor eval` warns that the frontier stops short of the top (best quality below
#     the best single worker's at a lower cost) a weight 10 times below the lowest is added; short of
#     the cheap end, one 10 times above the highest. At most COVER_ROUNDS rounds.
COVER_ROUNDS="${COVER_ROUNDS:-2}"
for ((round = 1; round <= COVER_ROUNDS; round++)); do
  cov="$OUT/coverage_train_$round"
  "$CONDUCTOR" eval "${ckpts[@]}" "${labels[@]}" --traces "$OUT/routerbench.h5" --split train \
    --aiq-bootstrap 0 --report "$cov" > /dev/null
  extra=()
  if grep -q "top of the frontier not covered" "$cov/report.md"; then
    extra+=("$(printf '%s\n' "${weights[@]}" | sort -g | head -n1 | awk '{printf "%g", $1 / 10}')")
  fi
  if grep -q "cheap end of the frontier not covered" "$cov/report.md"; then
    extra+=("$(printf '%s\n' "${weights[@]}" | sort -g | tail -n1 | awk '{printf "%g", $1 * 10}')")
  fi
  fresh=()
  for w in "${extra[@]}"; do
    printf '%s\n' "${weights[@]}" | grep -qx -- "$w" || fresh+=("$w")
  done
  [ ${#fresh[@]} -eq 0 ] && break
  echo "coverage round $round (train split): adding cost weights ${fresh[*]}"
  for w in "${fresh[@]}"; do train_weight "$w"; done
done

# 3. Evaluate on the test split: conductor (first cost weight) and its frontier vs the baselines.
"$CONDUCTOR" eval "${ckpts[@]}" "${labels[@]}" --traces "$OUT/routerbench.h5" --split test --report "$OUT/report"
echo "report: $OUT/report/report.md, $OUT/report/frontier.svg"
