#!/usr/bin/env bash
# The gateway tested with the official OpenAI and Anthropic Python SDKs (tests/sdk/sdk_test.py):
# builds the fixtures (a synthetic trace, a small export trained for a few seconds), then runs the
# tests against `conductor serve` and `conductor replay-server` on loopback.
#   bash scripts/test-sdk.sh [BUILD_DIR]        (default: build; relative to the checkout, or absolute)
# The SDKs come from the pinned reference venv (scripts/pyref.sh; set CONDUCTOR_PY to use another
# Python that has openai, anthropic and h5py). Without such a Python the script says so and exits 0
# (skipped); CI has it.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$PWD/$BUILD" ;; esac
BIN="$BUILD/bin/conductor"
[ -x "$BIN" ] || { echo "test-sdk: $BIN is missing: build the conductor target first" >&2; exit 1; }
PY=${CONDUCTOR_PY:-}
if [ -z "$PY" ]; then
  if VENV=$(bash scripts/pyref.sh 2>/tmp/test-sdk-pyref.log | tail -1) && [ -x "$VENV/bin/python" ]; then
    PY="$VENV/bin/python"
  fi
fi
if [ -z "$PY" ] || ! "$PY" -c 'import openai, anthropic, h5py' 2>/dev/null; then
  echo "test-sdk: SKIPPED: ${PY:-no Python} lacks the openai, anthropic or h5py packages" \
       "(CONDUCTOR_PY, else the venv of scripts/pyref.sh: its log is /tmp/test-sdk-pyref.log)"
  if [ "${CI:-}" = true ]; then tail -5 /tmp/test-sdk-pyref.log >&2; echo "test-sdk: CI must run them" >&2; exit 1; fi
  exit 0
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$BIN" traces synth --out "$WORK/traces.h5" --queries 400 --seed 1 > "$WORK/synth.log" 2>&1
"$BIN" train configs/quickstart.yaml --out "$WORK/run" --set total_steps=2048 --set bc_warmstart.enabled=false \
  --set final_eval.enabled=false --set env.synthetic.queries=400 > "$WORK/train.log" 2>&1 \
  || { tail -20 "$WORK/train.log" >&2; exit 1; }
"$BIN" export --checkpoint "$WORK/run" --out "$WORK/export" > "$WORK/export.log" 2>&1
echo "test-sdk: $("$PY" -c 'import openai, anthropic; print("openai", openai.__version__, "anthropic", anthropic.__version__)')"
CONDUCTOR_BIN="$BIN" CONDUCTOR_EXPORT="$WORK/export" CONDUCTOR_TRACES="$WORK/traces.h5" CONDUCTOR_WORK="$WORK" \
  "$PY" tests/sdk/sdk_test.py || { for f in "$WORK"/*.log; do echo "== $f"; tail -15 "$f"; done >&2; exit 1; }
