#!/usr/bin/env bash
# Behaviour-preserving refactors: the outputs that must not change, produced by one binary, and a
# byte comparison of two such output folders (issue 25's check).
#   bash scripts/byte-identical.sh run BIN OUT [--routerbench]   train quickstart, CartPole and
#        conductor-small (RouterBench 300k seed 1 with --routerbench, from ../shared/data) at one thread;
#        eval (plain, down:gpt-5, slow:gpt-5:5), ope, export and a logged-decision warm start on quickstart
#   bash scripts/byte-identical.sh compare OUT_A OUT_B           exit 1 on any difference
# Run both binaries with OUT folders of the same length or compare reports knowing that paths differ:
# metrics.jsonl, final_eval.json and model.safetensors hold no paths; reports are compared with each
# folder's own path replaced by OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  run)
    BIN=$(readlink -f "$2"); OUT=$3; RB=${4:-}
    mkdir -p "$OUT"; OUT=$(readlink -f "$OUT")
    train() {  # name config [--set ...]
      local name=$1 cfg=$2; shift 2
      rm -rf "${OUT:?}/$name"
      "$BIN" train "$cfg" --out "$OUT/$name" --quiet --threads 1 "$@" > "$OUT/$name.log" 2>&1
      echo "$name: done"
    }
    train quickstart configs/quickstart.yaml
    train cartpole configs/cartpole.yaml
    train conductor-small configs/conductor-small.yaml
    if [ "$RB" = --routerbench ]; then
      "$BIN" traces import --format routerbench --input ../shared/data/routerbench \
        --pricing ../shared/data/pricing/model_prices_and_context_window.2025-02-06.json --out "$OUT/routerbench.h5" > /dev/null
      train routerbench experiments/routerbench/conductor.yaml --set "env.traces=$OUT/routerbench.h5" \
        --set total_steps=300000 --set seed=1
    fi
    Q=$OUT/quickstart
    "$BIN" traces synth --out "$OUT/synth.h5" --queries 4000 --seed 1 > /dev/null
    for sc in "" down:gpt-5 slow:gpt-5:5; do
      "$BIN" eval --checkpoint "$Q" --traces "$OUT/synth.h5" --split test ${sc:+--scenario "$sc"} \
        --report "$OUT/eval${sc:+-${sc%%:*}}" > /dev/null 2>&1
    done
    "$BIN" traces simulate-logs --traces "$OUT/synth.h5" --logging uniform --out "$OUT/logs.h5" > /dev/null 2>&1
    "$BIN" ope --checkpoint "$Q" --logs "$OUT/logs.h5" --traces "$OUT/synth.h5" --report "$OUT/ope" > /dev/null 2>&1
    rm -rf "$OUT/export"
    "$BIN" export --checkpoint "$Q" --out "$OUT/export" > /dev/null 2>&1
    train qs-logs configs/quickstart.yaml --set bc_warmstart.enabled=true --set "bc_warmstart.logs=$OUT/logs.h5" \
      --set total_steps=20000
    ;;
  compare)
    A=$(readlink -f "$2"); B=$(readlink -f "$3"); rc=0
    for f in {quickstart,cartpole,conductor-small,routerbench,qs-logs}/{metrics.jsonl,final_eval.json} export/model.safetensors; do
      if [ ! -e "$A/$f" ] && [ ! -e "$B/$f" ]; then continue; fi
      if [ ! -e "$A/$f" ] || [ ! -e "$B/$f" ]; then echo "IN ONE FOLDER ONLY: $f"; rc=1; continue; fi
      if cmp -s "$A/$f" "$B/$f"; then echo "identical: $f"; else echo "DIFFERENT: $f"; rc=1; fi
    done
    for f in eval/report.json eval-down/report.json eval-slow/report.json ope/report.json export/manifest.json; do
      if [ ! -e "$A/$f" ] && [ ! -e "$B/$f" ]; then continue; fi
      if diff -q <(sed "s#$A#OUT#g" "$A/$f" | grep -v created_utc) <(sed "s#$B#OUT#g" "$B/$f" | grep -v created_utc) > /dev/null
      then echo "identical but for paths: $f"; else echo "DIFFERENT: $f"; rc=1; fi
    done
    exit $rc ;;
  *) echo "usage: $0 run BIN OUT [--routerbench] | compare OUT_A OUT_B" >&2; exit 2 ;;
esac
