#!/usr/bin/env bash
# Training throughput (environment samples per second, rollouts + PPO updates) of 1 versus N ranks
# on one machine, for docs/distributed.md:
#   bash bench/distributed_throughput.sh [CONFIG] [N] [--set k=v ...]
# defaults: configs/routerbench.yaml, N=2. Each rank keeps env.num_envs sub-environments (per-rank
# batch B), so N ranks step N times the samples per update. Start-up (loading traces, building the
# policy, rendezvous) is taken out by timing two lengths of the same run and dividing the difference
# in samples by the difference in wall time. BC warm start, checkpoints and final evaluation are off.
# The binary: $CONDUCTOR, else build/bin/conductor. Prints a table; also the load average, since
# the machine may be shared.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
config=${1:-$here/configs/routerbench.yaml}
n=${2:-2}
shift $(( $# >= 2 ? 2 : $# ))
bin=${CONDUCTOR:-$here/build/bin/conductor}
export CONDUCTOR=$bin
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common=(--quiet --set bc_warmstart.enabled=false --set final_eval.enabled=false --set checkpoint_every=0
        --set log.tensorboard=false --set threads=1 "$@")
short_updates=${SHORT_UPDATES:-4}
long_updates=${LONG_UPDATES:-24}
num_envs=$(grep -E '^ *num_envs:' "$config" | head -1 | awk '{print $2}')
batch=$(grep -E '^ *num_steps:' "$config" | head -1 | awk '{print $2}')

# Runs `ranks` ranks for `updates` updates; prints "<global steps> <wall seconds>".
run() {
  local ranks=$1 updates=$2 out=$tmp/run-$1-$2
  local steps=$(( updates * ranks * num_envs * batch ))
  local t0 t1
  t0=$(date +%s.%N)
  if [ "$ranks" -eq 1 ]; then
    "$bin" train "$config" --out "$out" --set total_steps=$steps "${common[@]}" > "$out.log" 2>&1 ||
      { cat "$out.log" >&2; exit 1; }
  else
    bash "$here/scripts/launch-local" "$ranks" "$config" --out "$out" --set total_steps=$steps "${common[@]}" \
      > "$out.log" 2>&1 || { cat "$out.log" >&2; exit 1; }
  fi
  t1=$(date +%s.%N)
  echo "$steps $(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')"
}

echo "config: $config  (per-rank num_envs $num_envs x num_steps $batch; load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
printf "%-6s %12s %12s %14s\n" ranks samples seconds samples_per_s
for ranks in 1 "$n"; do
  short=$(run "$ranks" "$short_updates")
  long=$(run "$ranks" "$long_updates")
  read -r s1 t1 <<< "$short"
  read -r s2 t2 <<< "$long"
  awk -v r="$ranks" -v s1="$s1" -v s2="$s2" -v t1="$t1" -v t2="$t2" \
    'BEGIN {printf "%-6s %12d %12.2f %14.0f\n", r, s2 - s1, t2 - t1, (s2 - s1) / (t2 - t1)}'
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
