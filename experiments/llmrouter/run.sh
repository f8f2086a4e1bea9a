#!/usr/bin/env bash
# The conductor on the LLMRouter data (9 open models, 14 tasks, real per-token prices): carve a
# validation split out of the training file, import, train one conductor per cost weight on the
# remaining training queries, and evaluate every checkpoint next to the baselines on the validation
# split (where settings are chosen) and on the test split (the reported table), with the frontier.
#
#   experiments/llmrouter/run.sh [OUT_DIR]        (default: runs/llmrouter)
#
# Environment: CONDUCTOR (binary, default build/bin/conductor), DATA (default ../shared/data),
# PYTHON (default python3; standard library only, for the validation carve), W_COSTS (cost weights
# per USD; the first one is the headline conductor, the router and cascade are tuned for it),
# STEPS (PPO environment steps per run, default 300000), SEED (default 1), SPLITS (the evaluated
# splits, default "validation test"), EXTRA (more `--set k=v` arguments for every training run),
# SELECT (default 1).
#
# SELECT=1 (default since 2026-12-07): never below the router or the cascade (issue 28): per cost
# weight PPO next to imitations of the router's and the cascade's rules that read the router's
# inputs (env.observe_predictions), plus the router's imitation at its 31 sweep weights, deployed per
# weight by `conductor eval --select-on validation` (experiments/selection/run.sh; OUT/report_test is
# the selected conductor on test, OUT/report_ppo PPO alone). SELECT=0: PPO alone, evaluated on
# SPLITS (the README's tables).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
CONDUCTOR="${CONDUCTOR:-$root/build/bin/conductor}"
DATA="${DATA:-$root/../shared/data}"
PYTHON="${PYTHON:-python3}"
OUT="${1:-$root/runs/llmrouter}"
W_COSTS="${W_COSTS:-1000 30 300 2000 3000 5000 10000 20000 50000 100000}"
STEPS="${STEPS:-300000}"
SEED="${SEED:-1}"
SPLITS="${SPLITS:-validation test}"
EXTRA="${EXTRA:-}"
SELECT="${SELECT:-1}"

[ -x "$CONDUCTOR" ] || { echo "error: conductor binary not found at $CONDUCTOR (build it or set CONDUCTOR)" >&2; exit 1; }
[ -d "$DATA/llmrouter" ] || { echo "error: $DATA/llmrouter is absent: this experiment needs the public LLMRouter data" >&2; exit 1; }
command -v "$PYTHON" >/dev/null || { echo "error: $PYTHON not found (set PYTHON): the validation carve needs Python 3" >&2; exit 1; }
mkdir -p "$OUT"

# 1. Validation split: 20% of the training questions (by a SHA-256 hash of the question text) go to
#    val.json; test.json is left as it is. Then import (prices: the host's own table, default_llm.json).
"$PYTHON" "$here/carve_validation.py" --format llmrouter --input "$DATA/llmrouter" --out "$OUT/data"
"$CONDUCTOR" traces import --format llmrouter --input "$OUT/data" --out "$OUT/llmrouter.h5"

if [ "$SELECT" = 1 ]; then
  CONDUCTOR="$CONDUCTOR" SEEDS="$SEED" W_COSTS="$W_COSTS" STEPS="$STEPS" EXTRA="$EXTRA" \
    BC_EXTRA="env.observe_predictions=true" \
    "$root/experiments/selection/run.sh" "$OUT/llmrouter.h5" "$here/conductor.yaml" "$OUT/selection"
  ln -sfn "$OUT/selection/s$SEED/report_selected" "$OUT/report_test"
  ln -sfn "$OUT/selection/s$SEED/report_ppo" "$OUT/report_ppo"
  echo "report: $OUT/report_test/report.md, $OUT/report_test/frontier.svg (PPO alone: $OUT/report_ppo/report.md)"
  exit 0
fi

# 2. Train one conductor per cost weight on the (carved) train split only.
ckpts=()
labels=()
extra=()
for kv in $EXTRA; do extra+=(--set "$kv"); done
for w in $W_COSTS; do
  run="$OUT/conductor_w$w"
  if [ ! -f "$run/checkpoints/latest" ]; then
    rm -rf "$run"
    "$CONDUCTOR" train "$here/conductor.yaml" --out "$run" --quiet \
      --set "env.traces=$OUT/llmrouter.h5" --set "env.reward.w_cost=$w" \
      --set "total_steps=$STEPS" --set "seed=$SEED" "${extra[@]}"
  fi
  ckpts+=(--checkpoint "$run")
  labels+=(--label "w_cost=$w")
done

# 3. Evaluate: conductor (first cost weight) and its frontier vs the baselines, per split.
for split in $SPLITS; do
  "$CONDUCTOR" eval "${ckpts[@]}" "${labels[@]}" --traces "$OUT/llmrouter.h5" --split "$split" \
    --report "$OUT/report_$split"
  echo "report: $OUT/report_$split/report.md, $OUT/report_$split/frontier.svg"
done
