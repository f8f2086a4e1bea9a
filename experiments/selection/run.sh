#!/usr/bin/env bash
# Never below the router or the cascade (issue 28, deliverable 3): per cost weight, train PPO and two
# imitations of the rules the conductor can express (the router's and the cascade's rule at that
# weight, `algo: bc`), choose among them on the validation split (carved from train), and evaluate
# the chosen conductors on test next to PPO alone; then pool the seeds.
#
#   experiments/selection/run.sh TRACES.h5 CONFIG.yaml OUT_DIR
#
# TRACES.h5 must have train, validation and test splits (carve validation from train before importing:
# experiments/llmrouter/carve_validation.py). Environment: CONDUCTOR (default build/bin/conductor),
# SEEDS (default "1 2 3"), W_COSTS (cost weights per USD, the first is the headline; default
# RouterBench's run.sh grid), STEPS (PPO steps per run, default: the config's), BC_STEPS (imitation
# steps, default 32768), CANDIDATES (rules imitated beside PPO, default "router cascade"), CASCADE_STEPS
# (env.max_steps of the cascade's imitation, default: the length of the cascade's chain),
# EXTRA (more `--set k=v` for every training run), BC_EXTRA (more `--set k=v` for the imitations only,
# e.g. env.observe_predictions=true: the router's inputs in the observation), JOBS (trainings at once, default 1), RULE_W_COSTS
# (extra weights with the router's imitation only; default the router's 31 sweep weights 1..1e5).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
CONDUCTOR="${CONDUCTOR:-$root/build/bin/conductor}"
TRACES="${1:?usage: run.sh TRACES.h5 CONFIG.yaml OUT_DIR}"
CONFIG="${2:?usage: run.sh TRACES.h5 CONFIG.yaml OUT_DIR}"
OUT="${3:?usage: run.sh TRACES.h5 CONFIG.yaml OUT_DIR}"
SEEDS="${SEEDS:-1 2 3}"
W_COSTS="${W_COSTS:-20 3 5 7 10 15 30 50 70 100 150 200 300 500 700 1000 1500 2000 3000 5000 10000}"
STEPS="${STEPS:-}"
BC_STEPS="${BC_STEPS:-32768}"
CANDIDATES="${CANDIDATES:-router cascade}"
EXTRA="${EXTRA:-}"
BC_EXTRA="${BC_EXTRA:-}"
JOBS="${JOBS:-1}"
# Imitation-only points: the router's own sweep (10^(5i/30), i = 0..30) minus W_COSTS, so that the
# selected frontier is not sparser than the router's; RULE_W_COSTS="" turns them off.
RULE_W_COSTS="${RULE_W_COSTS-$(awk 'BEGIN { for (i = 0; i <= 30; i++) printf "%g ", int(10 ^ (5 * i / 30) * 1e4 + 0.5) / 1e4 }')}"
rule_only=()
for w in $RULE_W_COSTS; do
  case " $W_COSTS " in *" $w "*) ;; *) rule_only+=("$w") ;; esac
done
[ -x "$CONDUCTOR" ] || { echo "error: conductor binary not found at $CONDUCTOR (build it or set CONDUCTOR)" >&2; exit 1; }
[ -f "$TRACES" ] || { echo "error: $TRACES: no such trace file" >&2; exit 1; }
mkdir -p "$OUT"
extra=()
for kv in $EXTRA; do extra+=(--set "$kv"); done
[ -n "$STEPS" ] && extra+=(--set "total_steps=$STEPS")
bc_extra=()
for kv in $BC_EXTRA; do bc_extra+=(--set "$kv"); done

# The cascade's imitation needs one step per worker of its chain: CASCADE_STEPS, or the chain's length
# over every model of the trace file (what a baselines-only evaluation names; an upper bound when
# EXTRA restricts env.workers).
chain="${CASCADE_STEPS:-}"
if [ -z "$chain" ]; then
  "$CONDUCTOR" eval --traces "$TRACES" --split validation --report "$OUT/baselines" --aiq-bootstrap 0 >/dev/null
  chain=$(tr -d ' \n' < "$OUT/baselines/report.json" | grep -o '"chain":\[[^]]*\]' | tr -cd ',' | wc -c)
  chain=$((chain + 1))
fi

train_one() {  # DIR SEED W [--set ...]
  local dir="$1" seed="$2" w="$3"
  shift 3
  [ -f "$dir/checkpoints/latest" ] && return 0
  rm -rf "$dir"
  "$CONDUCTOR" train "$CONFIG" --out "$dir" --quiet --threads 1 --set "env.traces=$TRACES" \
    --set "env.reward.w_cost=$w" --set "seed=$seed" "${extra[@]}" "$@" > "$dir.log" 2>&1 \
    || { echo "error: training $dir failed (log: $dir.log)" >&2; return 1; }
}

for seed in $SEEDS; do
  s="$OUT/s$seed"
  mkdir -p "$s"
  for w in $W_COSTS; do
    train_one "$s/ppo_w$w" "$seed" "$w" &
    for c in $CANDIDATES; do
      steps=()
      [ "$c" = cascade ] && steps=(--set "env.max_steps=$chain")
      while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
      train_one "$s/bc_${c}_w$w" "$seed" "$w" --set algo=bc --set "bc_warmstart.expert=$c" \
        --set "total_steps=$BC_STEPS" "${steps[@]}" "${bc_extra[@]}" &
    done
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
  done
  for w in "${rule_only[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
    train_one "$s/bc_router_w$w" "$seed" "$w" --set algo=bc --set bc_warmstart.expert=router \
      --set "total_steps=$BC_STEPS" "${bc_extra[@]}" &
  done
  wait
  ppo=() sel=()
  for w in $W_COSTS; do
    ppo+=(--checkpoint "$s/ppo_w$w" --label "w_cost=$w")
    sel+=(--checkpoint "$s/ppo_w$w" --label "w_cost=$w")
    for c in $CANDIDATES; do sel+=(--checkpoint "$s/bc_${c}_w$w" --label "w_cost=$w"); done
  done
  for w in "${rule_only[@]}"; do sel+=(--checkpoint "$s/bc_router_w$w" --label "w_cost=$w"); done
  [ -f "$s/report_ppo/report.json" ] || "$CONDUCTOR" eval "${ppo[@]}" --traces "$TRACES" --split test --report "$s/report_ppo" >/dev/null
  [ -f "$s/report_selected/report.json" ] || "$CONDUCTOR" eval "${sel[@]}" --traces "$TRACES" --split test \
    --select-on validation --report "$s/report_selected" >/dev/null
  echo "seed $seed: $s/report_ppo/report.md, $s/report_selected/report.md"
done

[ "$(echo $SEEDS | wc -w)" -ge 2 ] || exit 0  # pooling needs two seeds or more
for v in ppo selected; do
  reports=()
  for seed in $SEEDS; do reports+=(--report "$OUT/s$seed/report_$v"); done
  "$CONDUCTOR" eval-pool "${reports[@]}" --resamples 2000 --out "$OUT/pooled_$v" > "$OUT/pooled_$v.md"
  echo "== $v"
  cat "$OUT/pooled_$v.md"
done
