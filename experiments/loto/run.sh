#!/usr/bin/env bash
# Leave-one-task-out (LOTO) generalization on LLMRouter (issue 28, deliverable 4): for each of the
# 14 task families in turn, train on the other 13 (train split; their validation split stays
# carved beside it) and evaluate on every query of the held-out family as the test split. Per fold
# and per feature set (TF-IDF text head alone, or TF-IDF + the all-MiniLM-L6-v2 sentence embedding)
# one cost-conditioned conductor is trained and evaluated at 32 cost weights next to the baselines
# (router, tfidf_router, cascade, single workers, oracle), with paired bootstrap intervals.
# An in-distribution control ("fold" all: the usual 14-task train / test split, same recipe) runs first.
#
#   nice -n 10 experiments/loto/run.sh [OUT_DIR]          (default: runs/loto)
#
# Re-runnable: a carved file, a finished training (checkpoints/latest) or a finished evaluation
# (report_test/report.json) is kept, only what is missing runs. Wall times go to OUT/times.tsv;
# the table to OUT/table.md (summarize.py).
#
# Environment: CONDUCTOR (binary, default build/bin/conductor), PYTHON (needs h5py + numpy for the
# carve, default /usr/bin/python3), DATA (default ../shared/data), ENCODER (sentence-transformers
# directory, default build/third_party/all-MiniLM-L6-v2, from scripts/fetch-encoder.sh),
# SRC (the embedded LLMRouter trace file with the validation carve of experiments/llmrouter/run.sh;
# default OUT/llmrouter-emb.h5, made here when absent: carve, import, `traces embed`, ~6 min),
# STEPS (PPO steps per conductor, default 2000000), SEED (default 1), TASKS (default: all 14),
# VARIANTS (default "tfidf encoder"), CONTROL (1: run the in-distribution control, default 1),
# W_RANGE (trained cost-weight range, default [3,100000]), THREADS (default 1).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
CONDUCTOR="${CONDUCTOR:-$root/build/bin/conductor}"
PYTHON="${PYTHON:-/usr/bin/python3}"
DATA="${DATA:-$root/../shared/data}"
ENCODER="${ENCODER:-$root/build/third_party/all-MiniLM-L6-v2}"
OUT="${1:-$root/runs/loto}"
SRC="${SRC:-$OUT/llmrouter-emb.h5}"
STEPS="${STEPS:-2000000}"
SEED="${SEED:-1}"
VARIANTS="${VARIANTS:-tfidf encoder}"
CONTROL="${CONTROL:-1}"
W_RANGE="${W_RANGE:-[3,100000]}"
THREADS="${THREADS:-1}"
# The 32 log-spaced weights of experiments/llmrouter/README.md ("one cost-conditioned policy", LO=3),
# chosen there on the in-distribution validation split.
W_EVAL="3,4,6,8,12,16,23,32,44,62,86,121,169,236,331,463,648,907,1269,1775,2484,3475,4863,6805,9521,13323,18642,26086,36501,51074,71466,100000"

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

# 0. The source trace file: experiments/llmrouter/run.sh's carve (20% of train.json by a SHA-256 of
#    the question -> validation; test.json untouched) and import, plus the sentence embeddings.
if [ ! -f "$SRC" ]; then
  [ -d "$DATA/llmrouter" ] || { echo "error: $DATA/llmrouter is absent" >&2; exit 1; }
  python3 "$root/experiments/llmrouter/carve_validation.py" --format llmrouter --input "$DATA/llmrouter" --out "$OUT/data"
  "$CONDUCTOR" traces import --format llmrouter --input "$OUT/data" --out "$OUT/llmrouter.h5"
  timed source - embed "$CONDUCTOR" traces embed --threads "$THREADS" --model "$ENCODER" "$OUT/llmrouter.h5" "$SRC"
fi

variant_args() {
  case "$1" in
    tfidf) ;;   # experiments/llmrouter/conductor.yaml as it is: TF-IDF text head, hashed n-grams off
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
      timed "$name" "$v" train "$CONDUCTOR" train "$root/experiments/llmrouter/conductor.yaml" --out "$dir" --quiet \
        --threads "$THREADS" --set "env.traces=$traces" --set env.reward.w_cost=1000 \
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

# 1. In-distribution control: the usual split (train on all 14 tasks, test.json as the test split).
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
