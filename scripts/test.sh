#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (GoogleTest through CTest).
# Tests that need ../shared/data skip with a message when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd build
ctest --output-on-failure -j"${JOBS:-$(nproc)}" --timeout 900
