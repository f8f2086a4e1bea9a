#!/usr/bin/env bash
# Installs what is missing, then configures and builds Conductor (binary: <build dir>/bin/conductor).
#   bash scripts/build.sh                     everything against Debian's LibTorch 1.13 (CPU) into ./build
#   bash scripts/build.sh conductor           only the targets named (the quickstart builds just the binary)
#   bash scripts/build.sh --torch pip [...]   against LibTorch 2.x from PyPI's torch wheel, CUDA-enabled
#                                             (NCCL compiled in), into ./build-torch2 (scripts/fetch-torch.sh
#                                             pins the version and sha256 and caches the wheel); needs the
#                                             CUDA toolkit (nvcc), not a GPU
# Environment: BUILD_DIR (default build, or build-torch2 with --torch pip), BUILD_TYPE (RelWithDebInfo),
# JOBS (nproc), CONDUCTOR_TORCH_VERSION (the pinned 2.x version, default 2.11.0), CUDA_HOME.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH=debian
if [ "${1:-}" = "--torch" ]; then
  TORCH=${2:?"--torch needs debian or pip"}
  shift 2
fi
bash scripts/install-deps.sh
JOBS=${JOBS:-$(nproc)}
EXTRA=()
case "$TORCH" in
  debian) BUILD_DIR=${BUILD_DIR:-build} ;;
  pip)
    BUILD_DIR=${BUILD_DIR:-build-torch2}
    CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
    if [ ! -x "$CUDA_HOME/bin/nvcc" ]; then
      if command -v nvcc >/dev/null; then CUDA_HOME=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")"); else
        echo "build: --torch pip builds against the CUDA wheel and needs the CUDA toolkit (nvcc): none at $CUDA_HOME/bin/nvcc or on PATH (set CUDA_HOME)" >&2
        exit 1
      fi
    fi
    TORCH_ROOT=$(bash scripts/fetch-torch.sh | tail -1)
    EXTRA=(-DCMAKE_PREFIX_PATH="$TORCH_ROOT" -DTorch_DIR="$TORCH_ROOT/share/cmake/Torch"
           -DCaffe2_DIR="$TORCH_ROOT/share/cmake/Caffe2" -DCUDAToolkit_ROOT="$CUDA_HOME"
           -DCMAKE_CUDA_COMPILER="$CUDA_HOME/bin/nvcc" -DTORCH_CUDA_ARCH_LIST="8.0;9.0")
    ;;
  *) echo "build: --torch $TORCH: expected debian (LibTorch 1.13 from Debian, the default) or pip (LibTorch 2.x from PyPI, CUDA)" >&2
     exit 2 ;;
esac
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} "${EXTRA[@]}"
if [ $# -gt 0 ]; then
  cmake --build "$BUILD_DIR" -j"$JOBS" --target "$@"
else
  cmake --build "$BUILD_DIR" -j"$JOBS"
fi
