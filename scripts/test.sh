#!/usr/bin/env bash
# Set up, build, and run the whole test suite (the README's second command):
#  1. the Release build (build/) and every test: unit suites and the CLI end-to-end
#     scripts (tests/cli/: bad inputs, divergence, kill -9 and resume);
#  2. docs/writing-a-layer.md and docs/writing-an-optimizer.md as a user would
#     (scripts/example.sh, scripts/example_optimizer.sh: each installs the build into a
#     temporary prefix and builds, tests and trains with the example plugin);
#  3. hardening: a clang build with AddressSanitizer + UndefinedBehaviorSanitizer
#     (build-sanitize/) runs the same tests, and its libFuzzer harnesses run for
#     FUZZ_SECONDS (default 60) each (scripts/fuzz.sh). It is compiled for x86-64-v2
#     (SSE4.2, 4 float lanes) rather than for this CPU, so each run also checks Strata's
#     own kernels at a second SIMD width: the AVX-512/AVX2 paths in build/ and their
#     fallbacks here (STRATA_MARCH, README "Building against Strata").
# STRATA_TEST_QUICK=1 stops after step 2.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
count_tests() { sed -n 's/.*tests failed out of \([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1; }

(cd build && ctest --output-on-failure -j"$(nproc)") | tee "$log"
ran=$(count_tests)
bash scripts/example.sh
ran=$((ran + 1))
bash scripts/example_optimizer.sh
ran=$((ran + 1))

if [ -z "${STRATA_TEST_QUICK:-}" ]; then
  echo "== sanitizers (ASan + UBSan, clang) and fuzzing"
  bash scripts/setup.sh clang-14 libclang-rt-14-dev
  # -O1: a quicker build and still a usable stack trace; -g1: line numbers in reports.
  CXX=clang++-14 cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DSTRATA_SANITIZE=ON -DSTRATA_FUZZ=ON \
    -DSTRATA_MARCH=x86-64-v2 >/dev/null
  cmake --build build-sanitize -j"$(nproc)"
  (cd build-sanitize && ctest --output-on-failure -j"$(nproc)") | tee "$log"
  ran=$((ran + $(count_tests)))
  bash scripts/fuzz.sh build-sanitize
  ran=$((ran + 1))
else
  echo "test.sh: STRATA_TEST_QUICK set: sanitizer build and fuzzing skipped"
fi
# The example's and the sanitizer build's ctest print their own summaries: close with
# the whole count (CTest entries of both builds, the walkthrough, the fuzz run).
echo "tests: ${ran} passed, 0 failed"
