#!/usr/bin/env bash
# Forward throughput of one Qwen2 model through our binary (`conductor bench model`) and through
# python3-torch running the independent reference forward (tests/llm/reference/qwen2_ref.py), side by
# side: the same random weights (one checkpoint written by `conductor model init`, read by both), the
# same torch threads and OPENBLAS_NUM_THREADS, the same dtype and token count. The two run
# alternately ROUNDS times and the medians are compared, because this VM's speed drifts.
#
#   bench/model_vs_pytorch.sh [--preset qwen2.5-0.5b] [--dtype f32|bf16] [--tokens 128] [--threads 2]
#                             [--repeats 5] [--rounds 3] [--bin build/bin/conductor] [--dir DIR]
#                             [--python PY] [--reference ref|hf]
#
# --python: the interpreter of the Python side (default Debian's /usr/bin/python3 with python3-torch
# 1.13, next to build/bin/conductor; for the LibTorch 2.x build compare with the same torch version:
# --bin build-torch2/bin/conductor --python "$(bash scripts/pyref.sh | tail -1)/bin/python").
# --reference: ref (default) runs the independent reference forward tests/llm/reference/qwen2_ref.py,
# hf runs HF transformers' Qwen2ForCausalLM (bench/hf_forward.py; needs transformers). The tests do not
# need Python.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PRESET=qwen2.5-0.5b DTYPE=f32 TOKENS=128 THREADS=2 REPEATS=5 ROUNDS=3 PY=/usr/bin/python3 REFERENCE=ref
BIN="${CONDUCTOR_BIN:-$ROOT/build/bin/conductor}"
DIR=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --preset) PRESET="$2"; shift 2 ;;
    --dtype) DTYPE="$2"; shift 2 ;;
    --tokens) TOKENS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --repeats) REPEATS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --bin) BIN="$2"; shift 2 ;;
    --dir) DIR="$2"; shift 2 ;;
    --python) PY="$2"; shift 2 ;;
    --reference) REFERENCE="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

case "$REFERENCE" in
  ref) PYSCRIPT=("$ROOT/tests/llm/reference/qwen2_ref.py" bench) ;;
  hf) PYSCRIPT=("$ROOT/bench/hf_forward.py") ;;
  *) echo "error: --reference $REFERENCE: expected ref or hf" >&2; exit 2 ;;
esac
if ! "$PY" -c 'import torch' 2>/dev/null; then
  echo "error: $PY cannot import torch. Install Debian's python3-torch: sudo apt-get install python3-torch" >&2
  exit 2
fi
if [[ ! -x "$BIN" ]]; then
  echo "error: $BIN not found: build it first (cmake --build build --target conductor) or pass --bin" >&2
  exit 2
fi

if [[ -z "$DIR" ]]; then DIR="$(mktemp -d /tmp/model_vs_pytorch.XXXXXX)"; trap 'rm -rf "$DIR"' EXIT; fi
CKPT="$DIR/$PRESET-$DTYPE"
if [[ ! -f "$CKPT/config.json" ]]; then
  "$BIN" model init --preset "$PRESET" --dtype "$DTYPE" --seed 1 --out "$CKPT" >&2
fi

# Both sides: torch threads = OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = THREADS. OMP_WAIT_POLICY=PASSIVE
# (override by exporting it) stops idle OpenMP workers from spinning on the cores OpenBLAS's own
# threads need: on this 2-core VM spinning halves the throughput of both implementations.
export OPENBLAS_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS" OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
OURS=() THEIRS=()
for ((i = 1; i <= ROUNDS; i++)); do
  OURS+=("$("$BIN" bench model --checkpoint "$CKPT" --dtype "$DTYPE" --tokens "$TOKENS" --threads "$THREADS" \
              --repeats "$REPEATS" --decode-tokens 0 --json)")
  THEIRS+=("$("$PY" "${PYSCRIPT[@]}" --checkpoint "$CKPT" --dtype "$DTYPE" \
                --tokens "$TOKENS" --threads "$THREADS" --repeats "$REPEATS")")
done

CONDUCTOR_VERSION_STR="$("$BIN" --version)" "$PY" - "$PRESET" "$DTYPE" "$TOKENS" "$THREADS" "$OMP_WAIT_POLICY" "${#OURS[@]}" "${OURS[@]}" "${THEIRS[@]}" <<'EOF'
import json, statistics, sys
preset, dtype, tokens, threads, wait, n = sys.argv[1:7]
n = int(n)
ours = [json.loads(s) for s in sys.argv[7:7 + n]]
theirs = [json.loads(s) for s in sys.argv[7 + n:7 + 2 * n]]
# tokens/s of each round's median forward, and of the fastest forward of all rounds (the one least
# disturbed by other processes on a shared machine), and tokens per CPU-second of the process (all its
# threads: less sensitive to other processes taking the cores than wall time)
o_med = [r["forward_tokens_per_s"] for r in ours]
o_best = [r["forward_best_tokens_per_s"] for r in ours]
o_cpu = [r["forward_cpu_s"] for r in ours]
t_med = [r["tokens_per_s"] for r in theirs]
t_best = [r["tokens"] / r["best_s"] for r in theirs]
t_cpu = [r["cpu_s"] for r in theirs]
T = int(tokens)
print(f"{preset}, {dtype}, 1 x {tokens} tokens, {threads} threads (torch, OPENBLAS_NUM_THREADS, OMP_NUM_THREADS), "
      f"OMP_WAIT_POLICY={wait}, {n} alternating rounds")
print(f"{'implementation':<26} {'best tok/s':>10} {'median tok/s':>13} {'tok per CPU-s':>14}   per-round median tok/s")
import os
print("conductor:", os.environ.get("CONDUCTOR_VERSION_STR", "?"), "| python:", theirs[0]["impl"])
rows = [("conductor (LibTorch C++)", o_best, o_med, o_cpu), ("python " + theirs[0]["impl"].split(" ")[0], t_best, t_med, t_cpu)]
for name, best, med, cpu in rows:
    print(f"{name:<26} {max(best):>10.1f} {statistics.median(med):>13.1f} {T / statistics.median(cpu):>14.1f}   "
          + " ".join(f"{x:.1f}" for x in med))
print(f"ratio conductor / python: best {max(o_best) / max(t_best):.3f}, median {statistics.median(o_med) / statistics.median(t_med):.3f}, "
      f"per CPU-second {statistics.median(t_cpu) / statistics.median(o_cpu):.3f}")
EOF
