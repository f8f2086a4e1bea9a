#!/usr/bin/env bash
# Packs `conductor` for a GPU machine that has PyTorch (and so a CUDA LibTorch) but none of the Debian
# development packages and no network: builds the binary here against the PyPI torch version that
# machine has (scripts/fetch-torch.sh pins it), then copies it with its non-torch, non-CUDA shared
# libraries (yaml-cpp, HDF5, spdlog, fmt, OpenSSL, zlib, libstdc++, ...) into one folder:
#   DIR/bin/conductor   (RUNPATH $ORIGIN/../lib, set by patchelf; debug info stripped)
#   DIR/lib/*.so*       the libraries LibTorch does not bring
#   DIR/run             runs bin/conductor against the machine's own libtorch: $CONDUCTOR_TORCH_LIB, else
#                       the lib/ folder of the torch package that `python3 -c 'import torch'` finds
#   DIR/MANIFEST        torch version, the libraries, their sha256
# On the GPU machine:  bash scripts/gpu-check.sh --prebuilt DIR
#
#   bash scripts/gpu-bundle.sh [--torch-version 2.11.0] [--out DIR]      (default DIR: dist/conductor-gpu-<ver>)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VERSION=${CONDUCTOR_TORCH_VERSION:-2.11.0}
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --torch-version) VERSION=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "gpu-bundle: unknown option $1" >&2; exit 2 ;;
  esac
done
OUT=$(realpath -m "${OUT:-$ROOT/dist/conductor-gpu-$VERSION}")
# The --torch pip build folder (build-torch2 for the default version): the bundle is its binary with
# RUNPATH rewritten to $ORIGIN/../lib by patchelf (no second build).
if [ "$VERSION" = 2.11.0 ]; then BUILD_DIR=${BUILD_DIR:-$ROOT/build-torch2}; else BUILD_DIR=${BUILD_DIR:-$ROOT/build-torch-$VERSION}; fi
CONDUCTOR_TORCH_VERSION=$VERSION BUILD_DIR=$BUILD_DIR bash "$ROOT/scripts/build.sh" --torch pip conductor >&2
command -v patchelf >/dev/null || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2 && apt-get install -y --no-install-recommends patchelf >&2; }
TORCH_LIB=$(bash "$ROOT/scripts/fetch-torch.sh" "$VERSION" | tail -1)/lib

mkdir -p "$(dirname "$OUT")"
tmp=$(mktemp -d -p "$(dirname "$OUT")")   # same file system as OUT: the final mv is a rename
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/lib"
strip --strip-debug -o "$tmp/bin/conductor" "$BUILD_DIR/bin/conductor"
patchelf --set-rpath '$ORIGIN/../lib' "$tmp/bin/conductor"
# Every library the loader resolves, except glibc's own, LibTorch's (the machine's torch brings them)
# and CUDA's (the machine's driver and torch's nvidia-* packages bring them).
SKIP='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libutil\.so|libresolv\.so|libtorch|libc10|libgomp|libcaffe2|libshm|libcuda|libcudart|libcublas|libcufft|libcurand|libcusolver|libcusparse|libcupti|libcudnn|libcufile|libnv|libnccl)'
LD_LIBRARY_PATH="$TORCH_LIB" ldd "$BUILD_DIR/bin/conductor" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' |
  while read -r name path; do
    if echo "$name" | grep -Eq "$SKIP"; then continue; fi
    cp -L "$path" "$tmp/lib/$name"
  done
if LD_LIBRARY_PATH="$TORCH_LIB" ldd "$BUILD_DIR/bin/conductor" | grep -q "not found"; then
  echo "gpu-bundle: unresolved libraries:" >&2; LD_LIBRARY_PATH="$TORCH_LIB" ldd "$BUILD_DIR/bin/conductor" | grep "not found" >&2; exit 1
fi
# Check: with LibTorch's folder and the bundle's lib/ on the path (what DIR/run sets), every other library
# resolves inside the bundle (its indirect dependencies too: an executable's RUNPATH does not reach them).
outside=$(LD_LIBRARY_PATH="$TORCH_LIB:$tmp/lib" ldd "$tmp/bin/conductor" | awk '$2 == "=>" {print $1, $3}' |
          grep -Ev "^[^ ]+ ($tmp/(bin/\.\./)?lib/|$TORCH_LIB)" | awk '{print $1}' | grep -Ev "$SKIP" || true)
if [ -n "$outside" ]; then echo "gpu-bundle: not bundled: $outside" >&2; exit 1; fi
cat >"$tmp/run" <<'RUN'
#!/usr/bin/env bash
# Runs the bundled conductor against this machine's LibTorch (CONDUCTOR_TORCH_LIB, else python3's torch).
HERE="$(cd "$(dirname "$0")" && pwd)"
TL=${CONDUCTOR_TORCH_LIB:-}
if [ -z "$TL" ]; then
  TL=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null) || {
    echo "conductor bundle: set CONDUCTOR_TORCH_LIB to the lib/ folder of a LibTorch (python3 cannot import torch)" >&2; exit 1; }
fi
export LD_LIBRARY_PATH="$TL:$HERE/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$HERE/bin/conductor" "$@"
RUN
chmod +x "$tmp/run"
{
  echo "conductor bundle for torch $VERSION (PyPI wheel, CUDA); built $(date -u +%Y-%m-%dT%H:%MZ) on $(. /etc/os-release; echo "$PRETTY_NAME")"
  echo "glibc needed: $(objdump -T "$tmp/bin/conductor" "$tmp"/lib/* 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)"
  (cd "$tmp" && sha256sum bin/conductor lib/*)
} >"$tmp/MANIFEST"
rm -rf "$OUT"
mv "$tmp" "$OUT"
trap - EXIT
du -sh "$OUT" >&2
echo "$OUT"
