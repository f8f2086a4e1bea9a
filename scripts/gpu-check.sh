#!/usr/bin/env bash
# The GPU check of the 7B path, from a clean checkout, in one table (under 10 minutes on one H100):
#   1. the binary: built here (scripts/build.sh --torch pip) or a bundle (--prebuilt DIR, made by
#      scripts/gpu-bundle.sh on a build machine: for a GPU machine with PyTorch but no Debian -dev packages)
#   2. `conductor model logits` of a random Qwen2.5-0.5B-shaped checkpoint on the GPU against HF
#      transformers' Qwen2ForCausalLM on the same GPU (f32, TF32 off on both sides)
#   3. `conductor bench model` of the 7B shape with random weights (bf16): forward tokens/s, LoRA r=16
#      forward+backward tokens/s, peak GPU memory
#   4. 20 PPO updates of configs/conductor-7b.yaml on random 7B weights (the embedded synthetic world,
#      no checkpoint files): samples/s, peak GPU memory. 16 sub-environments instead of the config's 64
#      (minibatches of 16 rows as there): 64 x 8 samples of ~300-token prompts are ~16 PFLOP per update
#      (docs/distributed.md), ~40 s on one H100, and 20 of them would not fit the 10 minutes.
# A dry run on the CPU (a CI step): bash scripts/gpu-check.sh --device cpu --preset tiny
#
#   bash scripts/gpu-check.sh [--device cuda|cpu] [--preset 7b|tiny] [--prebuilt DIR] [--python PY]
#                             [--updates 20] [--out DIR]
# --python: an interpreter with torch and transformers for step 2 (default: python3; the step is marked
# "skipped" in the table when it cannot import them). Peak memory: GPU memory in use (nvidia-smi,
# sampled every 0.2 s) on cuda, the process's peak RSS (VmHWM) on cpu. Exit status 1 when a step fails.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEVICE=cuda PRESET=7b PREBUILT="" PY=${PYTHON:-python3} UPDATES=20 OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --preset) PRESET=$2; shift 2 ;;
    --prebuilt) PREBUILT=$2; shift 2 ;;
    --python) PY=$2; shift 2 ;;
    --updates) UPDATES=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$DEVICE" in cuda|cuda:*|cpu) ;; *) echo "gpu-check: --device $DEVICE: expected cuda or cpu" >&2; exit 2 ;; esac
case "$PRESET" in
  7b) SMALL=qwen2.5-0.5b BIG=qwen2.5-7b DTYPE=bf16 TOKENS=512 ENVS=16 STEPS=8 MINI=8 ;;
  tiny) SMALL=tiny BIG=tiny DTYPE=f32 TOKENS=64 ENVS=4 STEPS=4 MINI=2 ;;
  *) echo "gpu-check: --preset $PRESET: expected 7b or tiny" >&2; exit 2 ;;
esac
[ -n "$OUT" ] || OUT=$(mktemp -d)
mkdir -p "$OUT"
T0=$(date +%s)
ROWS=()
FAILED=0
row() { ROWS+=("$(printf '| %-34s | %-8s | %s |' "$1" "$2" "$3")"); [ "$2" = FAIL ] && FAILED=1; echo "gpu-check: $1: $2 $3" >&2; }

# ---- 1. the binary ----
if [ -n "$PREBUILT" ]; then
  [ -x "$PREBUILT/run" ] || { echo "gpu-check: $PREBUILT/run is missing: make the bundle with scripts/gpu-bundle.sh" >&2; exit 2; }
  C=("$PREBUILT/run")
else
  if ! bash "$ROOT/scripts/build.sh" --torch pip conductor >"$OUT/build.log" 2>&1; then
    tail -20 "$OUT/build.log" >&2
    row "build (scripts/build.sh --torch pip)" FAIL "see $OUT/build.log"
    printf '%s\n' "${ROWS[@]}"; exit 1
  fi
  C=("$ROOT/build-torch2/bin/conductor")
fi
VERSION=$("${C[@]}" --version 2>&1) || { row "binary" FAIL "$VERSION"; printf '%s\n' "${ROWS[@]}"; exit 1; }
GPU="none" GPU_INDEX=0
if [ "$DEVICE" != cpu ]; then
  case "$DEVICE" in cuda:*) GPU_INDEX=${DEVICE#cuda:} ;; esac
  GPU=$(nvidia-smi -i "$GPU_INDEX" --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | head -1)
  [ -n "$GPU" ] || { row "GPU" FAIL "nvidia-smi sees no GPU (run with --device cpu for a dry run)"; printf '%s\n' "${ROWS[@]}"; exit 1; }
fi
row "binary" ok "$VERSION; GPU: $GPU"

PEAK=""
# measure LOG SECONDS CMD...: runs CMD (killed after SECONDS), its peak memory goes to $PEAK.
measure() {
  local log=$1 limit=$2; shift 2
  "$@" >"$log" 2>&1 &
  local pid=$! peak=0 v t0=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    if [ $((SECONDS - t0)) -gt "$limit" ]; then echo "gpu-check: killed after $limit s" >>"$log"; kill "$pid"; fi
    if [ "$DEVICE" = cpu ]; then
      v=$(awk '/VmHWM/ {printf "%.0f\n", $2 * 1024}' "/proc/$pid/status" 2>/dev/null || true)
    else  # memory of this process on the GPU it uses (whole-GPU use where per-process is not reported)
      v=$(nvidia-smi -i "$GPU_INDEX" --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null |
          awk -F', *' -v p="$pid" '$1 == p && $2 ~ /^[0-9]+$/ {printf "%.0f\n", $2 * 1048576}' || true)
      [ -n "$v" ] || v=$(nvidia-smi -i "$GPU_INDEX" --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null |
                         awk '$1 ~ /^[0-9]+$/ {printf "%.0f\n", $1 * 1048576}' || true)
    fi
    if [ -n "$v" ] && [ "$v" -gt "$peak" ] 2>/dev/null; then peak=$v; fi
    sleep 0.2
  done
  wait "$pid"; local rc=$?
  PEAK=$(awk -v b="$peak" 'BEGIN { printf "%.2f GiB", b / 1073741824 }')
  return $rc
}
json_get() { python3 -c "import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(d$1)" 2>/dev/null; }
is_number() { [[ ${1:-} =~ ^[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$ ]]; }
# Every step has a time limit: a hung CUDA start must not eat the GPU machine's budget.
STEP_TIMEOUT=${STEP_TIMEOUT:-300}

# ---- 2. logits against transformers ----
IDS=$(seq -s, 1 3 190)   # 64 token ids
if timeout "$STEP_TIMEOUT" "${C[@]}" model init --preset "$SMALL" --dtype f32 --seed 1 --out "$OUT/small" --overwrite >"$OUT/init.log" 2>&1 &&
   timeout "$STEP_TIMEOUT" "${C[@]}" model logits --checkpoint "$OUT/small" --token-ids "$IDS" --device "$DEVICE" --out "$OUT/ours.safetensors" >"$OUT/logits.log" 2>&1; then
  if "$PY" -c 'import torch, transformers' 2>/dev/null; then
    dev=$DEVICE; [ "$dev" = cuda ] && dev=cuda:0
    if R=$(timeout "$STEP_TIMEOUT" "$PY" "$ROOT/scripts/gpu_check_logits.py" "$OUT/small" "$OUT/ours.safetensors" "$IDS" "$dev" f32 2>"$OUT/ref.log"); then
      rel=$(echo "$R" | json_get '["rel_diff"]'); abs=$(echo "$R" | json_get '["max_abs_diff"]')
      ver=$(echo "$R" | json_get '["transformers"]')
      ok=FAIL; is_number "$rel" && is_number "$abs" && ok=$(awk -v r="$rel" 'BEGIN { print (r + 0 < 1e-4) ? "ok" : "FAIL" }')
      row "logits vs transformers ($SMALL, f32)" "$ok" "$(awk -v a="$abs" -v r="$rel" 'BEGIN { printf "max abs diff %.2e, relative to the largest logit %.2e", a, r }') (limit 1e-4); transformers $ver on $dev, 64 tokens"
    else
      row "logits vs transformers ($SMALL, f32)" FAIL "reference failed: $(tail -1 "$OUT/ref.log")"
    fi
  else
    row "logits vs transformers ($SMALL, f32)" skipped "$PY cannot import torch and transformers (--python PY)"
  fi
else
  row "logits vs transformers ($SMALL, f32)" FAIL "$(tail -1 "$OUT/init.log" "$OUT/logits.log" | tail -1)"
fi

# ---- 3. bench model, 7B shape ----
if measure "$OUT/bench.log" "$STEP_TIMEOUT" "${C[@]}" bench model --preset "$BIG" --dtype "$DTYPE" --device "$DEVICE" --tokens "$TOKENS" \
     --decode-tokens 32 --repeats 3 --lora-rank 16 --threads "$(nproc)" --json; then
  B=$(tail -1 "$OUT/bench.log")
  fwd=$(echo "$B" | json_get '["forward_tokens_per_s"]'); dec=$(echo "$B" | json_get '["decode_tokens_per_s"]')
  step=$(echo "$B" | json_get '["lora_train_step_s"]')
  if ! is_number "$fwd" || ! is_number "$dec" || ! is_number "$step"; then
    row "bench model $BIG ($DTYPE)" FAIL "no numbers in the output: $B"
  else
  lora=$(awk -v s="$step" -v t="$TOKENS" 'BEGIN { printf "%.1f", (t - 1) / s }')
  row "bench model $BIG ($DTYPE)" ok "forward $(printf '%.1f' "$fwd") tok/s (1 x $TOKENS); decode $(printf '%.1f' "$dec") tok/s; LoRA r=16 fwd+bwd $lora tok/s; peak memory $PEAK"
  fi
else
  row "bench model $BIG ($DTYPE)" FAIL "$(tail -1 "$OUT/bench.log")"
fi

# ---- 4. PPO updates of configs/conductor-7b.yaml on random weights ----
TOTAL=$((UPDATES * ENVS * STEPS))
rm -rf "$OUT/run" "$OUT/synth.h5"   # a rerun into the same --out starts afresh
if timeout "$STEP_TIMEOUT" "${C[@]}" traces synth --out "$OUT/synth.h5" --queries 4000 --seed 1 >"$OUT/synth.log" 2>&1 &&
   measure "$OUT/train.log" "$((2 * STEP_TIMEOUT))" "${C[@]}" train "$ROOT/configs/conductor-7b.yaml" --out "$OUT/run" --quiet \
     --set env.traces="$OUT/synth.h5" --set policy.checkpoint= --set policy.model="$BIG" \
     --set policy.tokenizer="$ROOT/configs/tokenizers/conductor-small.json" --set policy.device="$DEVICE" \
     --set policy.dtype="$DTYPE" --set env.num_envs=$ENVS --set ppo.num_steps=$STEPS --set ppo.num_minibatches=$MINI \
     --set total_steps=$TOTAL --set checkpoint_every=1000000 --set final_eval.enabled=false; then
  # "finished after N updates, S steps, T s (R steps/s)": samples/s from S / T (R is rounded to a whole number)
  line=$(grep -E '^finished after' "$OUT/train.log" | tail -1 || true)
  ups=$(echo "$line" | sed -nE 's/^finished after ([0-9]+) updates.*/\1/p')
  sps=$(echo "$line" | sed -nE 's/.* ([0-9]+) steps, ([0-9.]+) s .*/\1 \2/p' | awk '$2 > 0 {printf "%.2f", $1 / $2}')
  if [ "$ups" = "$UPDATES" ] && is_number "$sps"; then
    row "PPO $BIG: $UPDATES updates" ok "$ups updates of $ENVS envs x $STEPS steps; $sps samples/s; peak memory $PEAK"
  else
    row "PPO $BIG: $UPDATES updates" FAIL "expected '$UPDATES updates' in: ${line:-$(tail -1 "$OUT/train.log")}"
  fi
else
  row "PPO $BIG: $UPDATES updates" FAIL "$(tail -1 "$OUT/train.log" 2>/dev/null || tail -1 "$OUT/synth.log")"
fi

echo
echo "gpu-check: device $DEVICE, preset $PRESET, $(($(date +%s) - T0)) s, outputs in $OUT"
printf '| %-34s | %-8s | %s |\n' check result detail
printf '|%s|%s|%s|\n' "------------------------------------" "----------" "--------------------------------"
printf '%s\n' "${ROWS[@]}"
exit $FAILED
