#!/usr/bin/env bash
# strata_bench --seed reaches every mode, not only scale: one batched epoch trained from
# two seeds starts from other weights (another first-epoch loss), the same seed twice
# repeats it bit for bit, and without --seed the config's own seed is used.
# Usage: bench_seed.sh path/to/strata_bench
set -uo pipefail
BENCH=$1
failed=0
fail() {
  echo "FAIL $*" >&2
  failed=1
}
# The JSON field KEY of one tiny batched run with extra arguments.
run() {
  "$BENCH" --mode batched --epochs 1 --warmup-epochs 0 --batch 64 "$@" |
    sed -n 's/.*"loss_first_epoch":\([^,}]*\).*"seed":\([0-9]*\).*/\2 \1/p; s/.*"seed":\([0-9]*\).*"loss_first_epoch":\([^,}]*\).*/\1 \2/p' | head -n 1
}
one=$(run --seed 1) || fail "--seed 1 failed"
again=$(run --seed 1) || fail "--seed 1 (again) failed"
two=$(run --seed 2) || fail "--seed 2 failed"
default=$(run) || fail "no --seed failed"
config_seed=$(sed -n 's/^seed: *\([0-9]*\).*/\1/p' "$(dirname "$0")/../../configs/rustgpt.yaml")
echo "seed loss: --seed 1: $one; again: $again; --seed 2: $two; default: $default (config seed $config_seed)"
[ -n "$one" ] && [ "${one%% *}" = 1 ] || fail "--seed 1: the run reports seed ${one%% *}"
[ "$one" = "$again" ] || fail "the same seed gave other losses: $one, $again"
[ "${one#* }" != "${two#* }" ] || fail "seeds 1 and 2 gave the same first-epoch loss ${one#* }: --seed is ignored"
[ "${default%% *}" = "$config_seed" ] || fail "without --seed the run used seed ${default%% *}, not the config's $config_seed"
[ "$failed" -eq 0 ] && echo "bench --seed: OK"
