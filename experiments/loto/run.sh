#!/usr/bin/env bash
# Leave-one-task-out (LOTO) generalization (issue 28, deliverable 4) on LLMRouter (14 task families)
# or RouterBench (3): for each task family in turn, train on the others (train split; their
# validation split stays carved beside it) and evaluate on every query of the held-out family as the
# test split. Per fold and per feature set (the TF-IDF text head alone, or TF-IDF + the
# all-MiniLM-L6-v2 sentence embedding) one cost-conditioned conductor is trained and evaluated at a
# grid of cost weights next to the baselines (router, tfidf_router, cascade, single workers,
# oracle), with paired bootstrap intervals. An in-distribution control ("fold" all: the usual
# train / test split, same recipe) runs first.
#
#   nice -n 10 experiments/loto/run.sh [OUT_DIR]                       (LLMRouter; default runs/loto)
#   BENCH=routerbench nice -n 10 experiments/loto/run.sh [OUT_DIR]     (default runs/loto-routerbench)
#
# Re-runnable: a carved file, a finished training (checkpoints/latest) or a finished evaluation
# (report_test/report.json) is kept, only what is missing runs. Wall times go to OUT/times.tsv;
# the table to OUT/table.md (summarize.py).
#
# Environment: BENCH (llmrouter | routerbench), CONDUCTOR (binary, default build/bin/conductor),
# PYTHON (needs h5py + numpy for the carve, default /usr/bin/python3), DATA (default ../shared/data),
# ENCODER (sentence-transformers directory, default build/third_party/all-MiniLM-L6-v2, from
# scripts/fetch-encoder.sh), SRC (the embedded trace file with a validation split carved from train
# by experiments/llmrouter/carve_validation.py; default OUT/BENCH-emb.h5, made here when absent:
# carve, import, `traces embed`, about 6 min for LLMRouter), STEPS (PPO steps per conductor, default
# 2000000), SEED (default 1), TASKS (default: all), VARIANTS (default "tfidf encoder"), CONTROL (1:
# run the in-distribution control, default 1), THREADS (default 1).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
CONDUCTOR="${CONDUCTOR:-$root/build/bin/conductor}"
PYTHON="${PYTHON:-/usr/bin/python3}"
DATA="${DATA:-$root/../shared/data}"
ENCODER="${ENCODER:-$root/build/third_party/all-MiniLM-L6-v2}"
BENCH="${BENCH:-llmrouter}"
case "$BENCH" in
  llmrouter) OUT="${1:-$root/runs/loto}" ;;
  routerbench) OUT="${1:-$root/runs/loto-routerbench}" ;;
  *) echo "error: BENCH must be llmrouter or routerbench, not $BENCH" >&2; exit 1 ;;
esac
SRC="${SRC:-$OUT/$BENCH-emb.h5}"
STEPS="${STEPS:-2000000}"
SEED="${SEED:-1}"
VARIANTS="${VARIANTS:-tfidf encoder}"
CONTROL="${CONTROL:-1}"
THREADS="${THREADS:-1}"
# Cost weights (per USD): the trained range, the default (headline) weight the router and cascade are
# tuned for, and the evaluated grid, as in each benchmark's README, "one cost-conditioned policy"
# (chosen there on the in-distribution validation split; LLMRouter: LO=3, 32 log-spaced weights;
# RouterBench: range [1, 10000], 23 weights).
if [ "$BENCH" = llmrouter ]; then
  CONFIG="$root/experiments/llmrouter/conductor.yaml"
  W_DEFAULT=1000
  W_RANGE="[3,100000]"
  W_EVAL="3,4,6,8,12,16,23,32,44,62,86,121,169,236,331,463,648,907,1269,1775,2484,3475,4863,6805,9521,13323,18642,26086,36501,51074,71466,100000"
else
  CONFIG="$root/experiments/routerbench/conductor.yaml"
  W_DEFAULT=20
  W_RANGE="[1,10000]"
  W_EVAL="1,1.5,2,3,5,7,10,15,20,50,70,100,150,200,300,500,700,1000,1500,2000,3000,5000,10000"
fi

[ -x "$CONDUCTOR" ] || { echo "error: conductor binary not found at $CONDUCTOR (build it or set CONDUCTOR)" >&2; exit 1; }
"$PYTHON" -c 'import h5py, numpy' 2>/dev/null || { echo "error: $PYTHON lacks h5py or numpy (set PYTHON; Debian: /usr/bin/python3)" >&2; exit 1; }
[ -f "$ENCODER/modules.json" ] || { echo "error: no sentence-transformers model at $ENCODER (run scripts/fetch-encoder.sh or set ENCODER)" >&2; exit 1; }
mkdir -p "$OUT"
times="$OUT/times.tsv"
[ -f "$times" ] || printf 'fold\tvariant\tstage\tseconds\n' > "$times"
timed() {  # timed FOLD VARIANT STAGE cmd...
  local t0 t1; t0=$(date +%s)
  "${@:4}"
  t1=$(date +%s); printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$((t1 - t0))" >> "$times"
}

# 0. The source trace file: experiments/llmrouter/carve_validation.py's carve (20% of the training
#    questions -> validation, by a SHA-256 of the question text or sample id; the test files
#    untouched), import, plus the sentence embedding of every query.
if [ ! -f "$SRC" ]; then
  [ -d "$DATA/$BENCH" ] || { echo "error: $DATA/$BENCH is absent" >&2; exit 1; }
  python3 "$root/experiments/llmrouter/carve_validation.py" --format "$BENCH" --input "$DATA/$BENCH" --out "$OUT/data"
  if [ "$BENCH" = llmrouter ]; then
    "$CONDUCTOR" traces import --format llmrouter --input "$OUT/data" --out "$OUT/$BENCH.h5"
  else
    "$CONDUCTOR" traces import --format routerbench --input "$OUT/data" \
      --pricing "$DATA/pricing/model_prices_and_context_window.2025-02-06.json" --out "$OUT/$BENCH.h5"
  fi
  timed source - embed "$CONDUCTOR" traces embed --threads "$THREADS" --model "$ENCODER" "$OUT/$BENCH.h5" "$SRC"
fi

variant_args() {
  case "$1" in
    tfidf) ;;   # the benchmark's conductor.yaml as it is: TF-IDF text head, hashed n-grams off
    encoder) echo "--set env.features.text.input=both --set env.features.encoder.enabled=true --set env.features.encoder.model=$ENCODER" ;;
    *) echo "error: unknown variant $1 (tfidf | encoder)" >&2; exit 1 ;;
  esac
}

run_fold() {  # run_fold NAME TRACES
  local name="$1" traces="$2" v dir
  for v in $VARIANTS; do
    dir="$OUT/$name/$v"
    if [ ! -f "$dir/checkpoints/latest" ]; then
      rm -rf "$dir"
      # shellcheck disable=SC2046
      timed "$name" "$v" train "$CONDUCTOR" train "$CONFIG" --out "$dir" --quiet \
        --threads "$THREADS" --set "env.traces=$traces" --set "env.reward.w_cost=$W_DEFAULT" \
        --set "env.reward.w_cost_range=$W_RANGE" --set "total_steps=$STEPS" --set "seed=$SEED" $(variant_args "$v")
    fi
    if [ ! -f "$dir/report_test/report.json" ]; then
      rm -rf "$dir/report_test"
      timed "$name" "$v" eval "$CONDUCTOR" eval --checkpoint "$dir" --traces "$traces" --split test \
        --report "$dir/report_test" --cost-weights "$W_EVAL" --threads "$THREADS" > "$dir/eval.log" 2>&1
    fi
    echo "$name/$v: $dir/report_test/report.md"
  done
}

# 1. In-distribution control: the usual split (train on every task, the test files as the test split).
[ "$CONTROL" = 1 ] && run_fold all "$SRC"

# 2. The folds.
TASKS="${TASKS:-$("$PYTHON" "$here/carve_task.py" --input "$SRC" --list-tasks)}"
for task in $TASKS; do
  mkdir -p "$OUT/$task"
  [ -f "$OUT/$task/traces.h5" ] || "$PYTHON" "$here/carve_task.py" --input "$SRC" --task "$task" --out "$OUT/$task/traces.h5"
  run_fold "$task" "$OUT/$task/traces.h5"
done

"$PYTHON" "$here/summarize.py" "$OUT" > "$OUT/table.md"
echo "table: $OUT/table.md"
