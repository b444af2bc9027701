#!/usr/bin/env bash
# Builds the Strata side of the benchmark for one instruction set, in its own folder,
# so that both can be measured on one AVX-512 machine (bench/README.md, "Both ISAs"):
#
#   bench/build_isa.sh avx2      # build-avx2/:   -march=x86-64-v3 (AVX2 + FMA)
#   bench/build_isa.sh avx512    # build-avx512/: -march=x86-64-v4 (AVX-512 F/BW/CD/DQ/VL)
#   ISA=avx2 bench/run.sh        # then: that folder, with OpenBLAS's Haswell kernels
#
# Only strata and strata_bench are built (no tests). Extra arguments go to cmake.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-}" in
  avx2) march=x86-64-v3 ;;
  avx512) march=x86-64-v4 ;;
  *) echo "usage: bench/build_isa.sh avx2|avx512 [cmake arguments]" >&2; exit 2 ;;
esac
isa=$1
shift
cmake -S "$ROOT" -B "$ROOT/build-$isa" -DCMAKE_BUILD_TYPE=Release -DSTRATA_MARCH=$march \
  -DSTRATA_BUILD_TESTS=OFF "$@" >/dev/null
cmake --build "$ROOT/build-$isa" -j"$(nproc)" --target strata_cli strata_bench
"$ROOT/build-$isa/strata_bench" --mode info
