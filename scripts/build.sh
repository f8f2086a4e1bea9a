#!/usr/bin/env bash
# Installs what is missing, then configures and builds Conductor into ./build (binary: build/bin/conductor).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
JOBS=${JOBS:-$(nproc)}
cmake -S . -B build -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
cmake --build build -j"$JOBS"
