#!/usr/bin/env bash
# Fetches LibTorch 2.x for the second build configuration (`scripts/build.sh --torch pip`): the PyPI
# `torch` wheel (CUDA 13.0 build, the C++ headers, libraries and share/cmake/Torch inside it) plus the
# three NVIDIA runtime libraries its libtorch_cuda.so needs that the CUDA 13 toolkit does not ship
# (cuSPARSELt, NVSHMEM, cuFile). Every wheel is pinned by version and sha256 and cached, so CI on the same
# machine downloads nothing twice:
#   wheels:    ${CONDUCTOR_CACHE:-~/.cache/conductor}/wheels/
#   unpacked:  ${CONDUCTOR_CACHE:-~/.cache/conductor}/torch-<version>/  (site-packages layout: torch/, nvidia/)
# Prints the unpacked folder's torch/ path (the LibTorch root; CMake: -DTorch_DIR=<it>/share/cmake/Torch).
#   bash scripts/fetch-torch.sh [VERSION]      VERSION: one of the pinned ones below (default 2.11.0)
# The wheels' RPATH ($ORIGIN/../../nvidia/...) finds the NVIDIA libraries in that layout; the CUDA
# toolkit's own (cudart, cuBLAS, cuDNN, NCCL, ...) come from the machine (/usr/local/cuda/lib64).
set -euo pipefail
VERSION=${1:-${CONDUCTOR_TORCH_VERSION:-2.11.0}}
CACHE=${CONDUCTOR_CACHE:-$HOME/.cache/conductor}
# name version sha256 (the cp311 manylinux_2_28 x86_64 wheel; the C++ parts are the same in every cpXY wheel)
case "$VERSION" in
  2.11.0)
    WHEELS=(
      "torch 2.11.0 7aa2f9bbc6d4595ba72138026b2074be1233186150e9292865e04b7a63b8c67a"
      "nvidia-cusparselt-cu13 0.8.0 25e30a8a7323935d4ad0340b95a0b69926eee755767e8e0b1cf8dd85b197d3fd"
      "nvidia-nvshmem-cu13 3.4.5 290f0a2ee94c9f3687a02502f3b9299a9f9fe826e6d0287ee18482e78d495b80"
      "nvidia-cufile 1.15.1.6 08a3ecefae5a01c7f5117351c64f17c7c62efa5fffdbe24fc7d298da19cd0b44"
    ) ;;
  *) echo "fetch-torch: version '$VERSION' is not pinned here (pinned: 2.11.0); add its wheels and sha256 to $0" >&2
     exit 2 ;;
esac
DEST="$CACHE/torch-$VERSION"
if [ -f "$DEST/.complete" ]; then echo "$DEST/torch"; exit 0; fi
# One fetch at a time per version (two CI runs on one machine); then look again, and clear what an
# interrupted fetch left behind.
mkdir -p "$CACHE"
exec 9>"$CACHE/.torch-$VERSION.lock"
flock 9
if [ -f "$DEST/.complete" ]; then echo "$DEST/torch"; exit 0; fi
PARTIAL="$CACHE/.partial-torch-$VERSION"   # what an interrupted fetch left: cleared under the lock
rm -rf "$PARTIAL"; mkdir -p "$PARTIAL"
command -v pip3 >/dev/null || command -v pip >/dev/null || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2 && apt-get install -y --no-install-recommends python3-pip >&2; }
PIP=$(command -v pip3 || command -v pip)
mkdir -p "$CACHE/wheels"
tmp=$(mktemp -d -p "$PARTIAL")
trap 'rm -rf "$tmp"' EXIT
for w in "${WHEELS[@]}"; do
  read -r name ver sha <<<"$w"
  stem=$(echo "$name" | tr '-' '_')
  file=$(ls "$CACHE/wheels/${stem}-${ver}-"*.whl 2>/dev/null | head -1 || true)
  if [ -z "$file" ] || ! echo "$sha  $file" | sha256sum -c --status; then
    echo "fetch-torch: downloading $name==$ver" >&2
    "$PIP" download -q --no-deps --only-binary=:all: --python-version 3.11 --implementation cp \
      --platform manylinux_2_28_x86_64 -d "$tmp/dl" "$name==$ver" >&2
    file=$(ls "$tmp/dl/${stem}-${ver}-"*.whl | head -1)
    if ! echo "$sha  $file" | sha256sum -c --status; then
      echo "fetch-torch: $file: sha256 $(sha256sum "$file" | cut -d' ' -f1), expected $sha" >&2; exit 1
    fi
    mv "$file" "$CACHE/wheels/"
    file="$CACHE/wheels/$(basename "$file")"
  fi
  echo "fetch-torch: unpacking $(basename "$file")" >&2
  python3 - "$file" "$tmp/root" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    # only the C++ side: libraries, headers, CMake files (skip the Python modules of the torch wheel)
    names = [n for n in z.namelist() if n.startswith(("torch/lib/", "torch/include/", "torch/share/", "nvidia/"))]
    z.extractall(sys.argv[2], names)
PY
done
rm -rf "$DEST"
mv -T "$tmp/root" "$DEST"
touch "$DEST/.complete"
echo "$DEST/torch"
