#!/usr/bin/env bash
# Installs what Strata needs to build and run, from Debian 12 packages, if missing:
# the toolchain and libraries, SentencePiece (subword tokens), Open MPI (data-parallel
# training), gnuplot (`strata plot`) and the fortune files (configs/fortunes.yaml).
# Extra package names given as arguments are installed too (scripts/test.sh adds clang
# and its sanitizer/libFuzzer runtimes for the hardening stage).
set -euo pipefail
packages=(build-essential cmake pkg-config libxtensor-dev libxtensor-blas-dev libxsimd-dev
          libopenblas-dev libyaml-cpp-dev libboost-test-dev libcli11-dev nlohmann-json3-dev
          libsentencepiece-dev libopenmpi-dev openmpi-bin gnuplot-nox fortunes "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The handwritten-digits data set for configs/digits_mlp.yaml (from Debian's python3-sklearn).
bash "$(dirname "$0")/get_digits.sh"
