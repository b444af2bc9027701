#!/usr/bin/env bash
# Extracts the handwritten-digits data set (1,797 8x8 images: 64 pixel values 0-16, then
# the label) that Debian's python3-sklearn package ships, to data/digits.csv. Only apt
# is used: the package is downloaded as a .deb and unpacked here, not installed (that
# would pull in scipy). Nothing happens when data/digits.csv exists.
set -euo pipefail
cd "$(dirname "$0")/.."
target=data/digits.csv
[ -s "$target" ] && exit 0
member=usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -f "/$member" ]; then  # python3-sklearn is installed: take its copy
  cp "/$member" "$work/digits.csv.gz"
else
  (cd "$work" && apt-get download python3-sklearn >/dev/null 2>&1) || {
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    (cd "$work" && apt-get download python3-sklearn >/dev/null)
  }
  dpkg -x "$work"/python3-sklearn_*.deb "$work/x"
  cp "$work/x/$member" "$work/digits.csv.gz"
fi
mkdir -p data
gzip -dc "$work/digits.csv.gz" >"$work/digits.csv"
rows=$(wc -l <"$work/digits.csv")
[ "$rows" -eq 1797 ] || { echo "get_digits: expected 1797 rows, got $rows" >&2; exit 1; }
mv "$work/digits.csv" "$target"
echo "get_digits: $target ($rows rows)"
