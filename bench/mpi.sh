#!/usr/bin/env bash
# Ranks x threads on the d=512 workload (bench/README.md's "scale": d=512, hidden 2048, 6
# post-norm blocks, T=256, B=16 global, V=4096, random tokens, through the trainer):
# 1 rank x 1 thread, 1 rank x 2 threads and 2 ranks x 1 thread, one after the other in
# one run, then a table: tokens/s (global batch), seconds per step, peak RSS per rank,
# MB all-reduced per step and seconds per step spent waiting for the all-reduce.
# Needs an MPI build (STRATA_WITH_MPI) and a quiet machine for meaningful numbers.
#
# Knobs (environment): STEPS=3 WARMUP=1 (timed / untimed steps), QUICK=1 (a smoke run at
# d=64, T=32: seconds, numbers meaningless), BUILD_DIR=build, OUT=file.jsonl,
# MPIRUN="mpirun --oversubscribe --allow-run-as-root" (as root; a user drops the last flag).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build}
BENCH=$BUILD/strata_bench
[ -x "$BENCH" ] || { echo "missing $BENCH: build first" >&2; exit 2; }
read -r -a MPIRUN <<<"${MPIRUN:-mpirun --oversubscribe --allow-run-as-root}"
OUT=${OUT:-$(mktemp "${TMPDIR:-/tmp}/strata-mpi-bench.XXXXXX.jsonl")}
SIZE=(--d 512 --hidden 2048 --layers 6 --seq-len 256 --batch 16 --vocab 4096)
[ "${QUICK:-0}" = 1 ] && SIZE=(--d 64 --hidden 256 --layers 2 --seq-len 32 --batch 16 --vocab 512)
ARGS=(--mode scale "${SIZE[@]}" --steps "${STEPS:-3}" --warmup-steps "${WARMUP:-1}" --json "$OUT")
export OPENBLAS_NUM_THREADS=1  # Strata's pool splits the work (see framework/parallel.hpp)

: >"$OUT"
"$BENCH" "${ARGS[@]}" --threads 1 >/dev/null
"$BENCH" "${ARGS[@]}" --threads 2 >/dev/null
"${MPIRUN[@]}" -np 2 "$BENCH" "${ARGS[@]}" --threads 1 >/dev/null

python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print("| ranks x threads | rank | tokens/s | s/step | peak RSS MB | all-reduce MB/step | wait s/step |")
print("|---|---|---|---|---|---|---|")
for j in rows:
    print(f"| {j['ranks']} x {j['threads']} | {j['rank']} | {j['tokens_per_s']:.0f} | "
          f"{j['sec_per_step_median']:.3f} | {j['peak_rss_mb']:.0f} | "
          f"{j['allreduce_mb_per_step']:.1f} | {j['allreduce_wait_s_per_step']:.4f} |")
print(f"\nparameters {rows[0]['params']}, tokens per step {rows[0]['tokens_per_step']:.0f}, "
      f"model GFLOP per step {rows[0]['train_flops_per_token'] * rows[0]['tokens_per_step'] / 1e9:.1f}; "
      f"JSON lines in {sys.argv[1]}")
PY
