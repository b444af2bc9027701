#!/usr/bin/env bash
# Runs each libFuzzer harness for a bounded time (FUZZ_SECONDS, default 60) from the
# seed corpora in tests/fuzz/corpus/. Usage: scripts/fuzz.sh BUILD_DIR
# BUILD_DIR is a clang build with -DSTRATA_FUZZ=ON (scripts/test.sh makes one). New
# corpus entries go to a scratch copy; a crashing input is kept in BUILD_DIR/fuzz-findings/
# and fails the run: make it a regression test (tests/fuzz/regressions/) and fix it.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(readlink -f "${1:?usage: scripts/fuzz.sh BUILD_DIR}")
seconds=${FUZZ_SECONDS:-60}
findings=$build/fuzz-findings
mkdir -p "$findings"
export OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
status=0
for target in config checkpoint; do
  corpus=$(mktemp -d)
  cp tests/fuzz/corpus/$target/* "$corpus"/
  # The regression inputs replay first; then -max_total_time of fuzzing.
  if [ -d tests/fuzz/regressions/$target ]; then
    "$build/fuzz_$target" -runs=0 tests/fuzz/regressions/$target >/dev/null 2>"$findings/$target.log" ||
      { echo "fuzz_$target: a regression input fails again:"; tail -30 "$findings/$target.log"; status=1; }
  fi
  start=$(date +%s)
  if "$build/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=20000 \
       -print_final_stats=1 -artifact_prefix="$findings/$target-" "$corpus" >"$findings/$target.log" 2>&1; then
    echo "fuzz_$target: $(( $(date +%s) - start )) s, no crash;" \
         "$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$findings/$target.log" | grep -o '[0-9]*$') inputs," \
         "corpus $(ls "$corpus" | wc -l) entries"
  else
    echo "fuzz_$target: FOUND A CRASH after $(( $(date +%s) - start )) s:"
    grep -E -A25 '^==[0-9]+==|runtime error|deadly signal|uncaught|Test unit written' "$findings/$target.log" | head -60
    status=1
  fi
  rm -rf "$corpus"
done
exit $status
