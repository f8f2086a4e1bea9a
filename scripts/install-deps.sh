#!/usr/bin/env bash
# Installs every Debian package Conductor needs to build, test and run. Idempotent: packages already
# present are skipped by apt; nothing is downloaded outside Debian's archive.
set -euo pipefail
PKGS=(
  cmake make g++ pkg-config ca-certificates git
  libtorch-dev libopenblas0-pthread          # LibTorch 1.13 (CPU) with a fast BLAS (see DEVELOPERS.md)
  libgloo-dev                               # headers LibTorch's c10d Gloo process group needs (docs/distributed.md)
  libboost-dev libssl-dev zlib1g-dev        # Asio / Beast
  openssl                                   # the TLS tests make their CA and certificates with it
  libyaml-cpp-dev libeigen3-dev libhdf5-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-h5py python3-numpy        # format interoperability test (h5py reads our traces)
  wrk curl                                  # serving load benchmark; the README's serve example
  libutf8proc-dev libpcre2-dev              # tokenizer: NFC normalization, Unicode-aware pre-tokenizer regex
  libhiredis-dev redis-server               # gateway API keys: counters shared by replicas; its test starts a redis-server
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
echo "install-deps: all ${#PKGS[@]} packages present"
