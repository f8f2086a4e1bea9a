#!/usr/bin/env bash
# Installs what is missing, then configures and builds Conductor into ./build (binary: build/bin/conductor).
#   bash scripts/build.sh              everything (libraries, the binary, tests, benchmarks)
#   bash scripts/build.sh conductor    only the targets named (the quickstart builds just the binary)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
JOBS=${JOBS:-$(nproc)}
cmake -S . -B build -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
if [ $# -gt 0 ]; then
  cmake --build build -j"$JOBS" --target "$@"
else
  cmake --build build -j"$JOBS"
fi
