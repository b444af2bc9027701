#!/usr/bin/env bash
# Strata vs PyTorch, side by side on one machine in one run (bench/README.md).
#
# Builds nothing of Strata's: it runs the `strata` CLI and `strata_bench` of an existing
# build (scripts/build.sh). The one compile is the reference's own BLAS floor,
# ../shared/bench/recipe_floor.c, built into a temporary folder with the build line at
# its top. Each repetition runs every workload with Strata and PyTorch interleaved
# (Strata, PyTorch, Strata, PyTorch...; the order flips on even repetitions), then
# bench/summarize.py prints the table of medians and ratios.
#
# Knobs (environment):
#   REPS=3            repetitions (QUICK=1: 1)
#   QUICK=1           smoke run: 1 repetition, 10+10 recipe epochs, 5 batched epochs,
#                     1 scale step, 3 generation repetitions (a few minutes)
#   THREADS=1,2       Strata's thread counts (and PyTorch's, except its recipe: 1 thread)
#   SKIP_GEMM=1 SKIP_RECIPE=1 SKIP_BATCHED=1 SKIP_SCALE=1 SKIP_GENERATE=1
#                     leave a workload out; SKIP_TORCH=1 / SKIP_FLOOR=1 leave out the
#                     PyTorch runs / the BLAS floor
#   RECIPE_EPOCHS=100 BATCHED_EPOCHS=20 SCALE_STEPS=3 SCALE_WARMUP=1 GEN_REPS=9
#   TORCH_MALLOC=default   or nofree (torch_reference.py --malloc)
#   WAIT_QUIET=0      before each run wait up to this many seconds until other processes
#                     use < QUIET_THRESHOLD (0.3) cores; 0 = don't wait. On a shared host
#                     WAIT_QUIET=60 gives cleaner numbers at the cost of a longer run
#   ISA=avx2|avx512   measure that instruction set (bench/build_isa.sh builds it): the
#                     build in build-ISA (unless BUILD_DIR says otherwise; it must
#                     target that ISA) and, unless OPENBLAS_CORETYPE is set, OpenBLAS's
#                     kernels for it (Haswell / SkylakeX) on both sides; the floor is
#                     compiled for it too. Empty (default): build/ and OpenBLAS's own pick
#   BUILD_DIR=build   where strata and strata_bench are
#   SHARED_DIR=../shared   the reference scripts (bench/) and data (reference/rustgpt/)
#   OUT=dir           results folder (default ${TMPDIR:-/tmp}/strata-bench/<timestamp>):
#                     results.jsonl (one line per run), logs/, summary.md
#   PYTHON=/usr/bin/python3   Debian's interpreter, which has torch and numpy
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
ISA=${ISA:-}
FLOOR_MARCH=native
case "$ISA" in
  "") ;;
  avx2) export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}; FLOOR_MARCH=x86-64-v3 ;;
  avx512) export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX}; FLOOR_MARCH=x86-64-v4 ;;
  *) echo "ISA=$ISA: expected avx2 or avx512" >&2; exit 2 ;;
esac
BUILD=$(cd "${BUILD_DIR:-$ROOT/build${ISA:+-$ISA}}" 2>/dev/null && pwd) || { echo "no build folder ${BUILD_DIR:-$ROOT/build${ISA:+-$ISA}}: run scripts/build.sh${ISA:+ (bench/build_isa.sh $ISA)} first" >&2; exit 2; }
SHARED=${SHARED_DIR:-$ROOT/../shared}
REF=$SHARED/reference/rustgpt
TORCH_REF=$SHARED/bench/torch_reference.py
FLOOR_SRC=$SHARED/bench/recipe_floor.c
PY=${PYTHON:-/usr/bin/python3}
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
  REPS=${REPS:-1} RECIPE_EPOCHS=${RECIPE_EPOCHS:-10} BATCHED_EPOCHS=${BATCHED_EPOCHS:-5}
  SCALE_STEPS=${SCALE_STEPS:-1} GEN_REPS=${GEN_REPS:-3}
fi
REPS=${REPS:-3}
RECIPE_EPOCHS=${RECIPE_EPOCHS:-100}
BATCHED_EPOCHS=${BATCHED_EPOCHS:-20}
SCALE_STEPS=${SCALE_STEPS:-3}
SCALE_WARMUP=${SCALE_WARMUP:-1}
GEN_REPS=${GEN_REPS:-9}
TORCH_MALLOC=${TORCH_MALLOC:-default}
IFS=, read -r -a THREAD_LIST <<< "${THREADS:-1,2}"
OUT=${OUT:-${TMPDIR:-/tmp}/strata-bench/$(date +%Y%m%d-%H%M%S)}
skip() { [ "${!1:-0}" = 1 ]; }

for f in "$BUILD/strata" "$BUILD/strata_bench"; do
  [ -x "$f" ] || { echo "missing $f: build first (scripts/build.sh, or BUILD_DIR=...)" >&2; exit 2; }
done
INFO=$("$BUILD/strata_bench" --mode info) || { echo "$BUILD/strata_bench --mode info failed" >&2; exit 2; }
field() { "$PY" -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$INFO" "$1"; }
BUILD_ISA=$(field isa) BLAS_CORE=$(field blas_core) CPU_MODEL=$(field cpu_model)
if [ -n "$ISA" ] && [ "$BUILD_ISA" != "$ISA" ]; then
  echo "ISA=$ISA but $BUILD targets $BUILD_ISA: build it with bench/build_isa.sh $ISA" >&2
  exit 2
fi
for f in "$REF/pretraining_data.json" "$REF/chat_training_data.json" "$TORCH_REF" "$FLOOR_SRC"; do
  [ -f "$f" ] || { echo "missing $f (SHARED_DIR=$SHARED)" >&2; exit 2; }
done
mkdir -p "$OUT/logs"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench-work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
RESULTS=$OUT/results.jsonl
echo "results -> $OUT   (REPS=$REPS THREADS=${THREADS:-1,2} QUICK=$QUICK)"
echo "# host: $(nproc) cores, $CPU_MODEL; loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# ISA: Strata built for $BUILD_ISA${ISA:+ (ISA=$ISA)}; OpenBLAS core $BLAS_CORE"
echo "# env: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-} GLIBC_TUNABLES=${GLIBC_TUNABLES:-}"
echo "# strata: $BUILD  commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')"
{
  echo "{\"kind\": \"settings\", \"reps\": $REPS, \"quick\": $QUICK, \"threads\": \"${THREADS:-1,2}\","
  echo " \"recipe_epochs\": $RECIPE_EPOCHS, \"batched_epochs\": $BATCHED_EPOCHS, \"scale_steps\": $SCALE_STEPS,"
  echo " \"scale_warmup\": $SCALE_WARMUP, \"gen_reps\": $GEN_REPS, \"torch_malloc\": \"$TORCH_MALLOC\","
  echo " \"wait_quiet\": ${WAIT_QUIET:-0}, \"isa\": \"$BUILD_ISA\", \"blas_core\": \"$BLAS_CORE\","
  echo " \"cpu_model\": \"$CPU_MODEL\", \"openblas_coretype\": \"${OPENBLAS_CORETYPE:-}\","
  echo " \"commit\": \"$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)\", \"cores\": $(nproc),"
  echo " \"date\": \"$(date -Iseconds)\"}"
} | tr -d '\n' >> "$RESULTS"
echo >> "$RESULTS"

# measure WORKLOAD SIDE THREADS REP PARSE [JSON_FILE] -- CMD...
measure() {
  local workload=$1 side=$2 threads=$3 rep=$4 parse=$5 json=$6
  shift 6
  "$PY" "$HERE/measure.py" --results "$RESULTS" --log "$OUT/logs/$workload-$side.log" \
    --workload "$workload" --side "$side" --threads "$threads" --rep "$rep" --parse "$parse" \
    --wait-quiet "${WAIT_QUIET:-0}" --quiet-threshold "${QUIET_THRESHOLD:-0.3}" \
    ${json:+--json-from "$json"} -- "$@"
}
# Runs "strata" then "torch" (shell functions taking REP THREADS), flipped on even reps.
pair() {
  local strata_fn=$1 torch_fn=$2 rep=$3 threads=$4
  if [ $((rep % 2)) = 1 ] || skip SKIP_TORCH; then
    $strata_fn "$rep" "$threads"
    skip SKIP_TORCH || $torch_fn "$rep" "$threads"
  else
    $torch_fn "$rep" "$threads"
    $strata_fn "$rep" "$threads"
  fi
}

DATA_ARGS=(--pretrain "$REF/pretraining_data.json" --chat "$REF/chat_training_data.json")
TORCH=("$PY" "$TORCH_REF" --malloc "$TORCH_MALLOC")

# --- the recipe's BLAS floor: compiled once, with the build line at the top of its source
FLOOR=""
FLOOR_ARGS=()
if ! skip SKIP_RECIPE && ! skip SKIP_FLOOR; then
  cp "$FLOOR_SRC" "$WORK/"
  build_line=$(sed -n 's/^ \* Build: //p' "$FLOOR_SRC" | head -1 | sed "s/-march=native/-march=$FLOOR_MARCH/")
  echo "# recipe_floor: $build_line"
  if (cd "$WORK" && eval "$build_line") > "$OUT/logs/floor-build.log" 2>&1; then
    FLOOR=$WORK/recipe_floor
    if [ "$RECIPE_EPOCHS" != 100 ]; then
      # its default step list is 100 epochs of each phase: scale the step counts
      mapfile -t FLOOR_ARGS < <("$PY" - "$FLOOR_SRC" "$RECIPE_EPOCHS" <<'EOF'
import re, sys
src, epochs = open(sys.argv[1]).read(), int(sys.argv[2])
block = src[src.index("rustgpt[] = {"):]
block = block[:block.index("};")]
for t, n in re.findall(r'"(\d+):(\d+)"', block):
    print(f"{t}:{int(n) * epochs // 100}")
EOF
)
    fi
  else
    echo "# recipe_floor did not build (see $OUT/logs/floor-build.log): no floor" >&2
  fi
fi
RECIPE_CONFIG=$ROOT/configs/rustgpt.yaml
if [ "$RECIPE_EPOCHS" != 100 ]; then
  sed "s/epochs: 100/epochs: $RECIPE_EPOCHS/g" "$RECIPE_CONFIG" > "$WORK/rustgpt.yaml"
  RECIPE_CONFIG=$WORK/rustgpt.yaml
fi

# --- the workloads: <name>_strata / <name>_torch REP THREADS
gemm_strata() {
  measure gemm strata "$2" "$1" json "$WORK/sb.json" \
    "$BUILD/strata_bench" --mode gemm --threads "$2" --shapes 2048x2048x2048 --json "$WORK/sb.json"
}
recipe_strata() {
  rm -rf "$WORK/run"
  measure recipe strata "$2" "$1" strata-train "" \
    "$BUILD/strata" train "$RECIPE_CONFIG" --threads "$2" --out "$WORK/run" \
    --data "pretrain=$REF/pretraining_data.json" --data "instruct=$REF/chat_training_data.json"
  rm -rf "$WORK/run"
}
recipe_torch() {
  measure recipe torch 1 "$1" json "$WORK/t.json" "${TORCH[@]}" --mode recipe --threads 1 \
    --recipe-epochs "$RECIPE_EPOCHS" --json "$WORK/t.json"
}
recipe_floor() {
  OPENBLAS_NUM_THREADS=1 measure recipe floor 1 "$1" floor "" "$FLOOR" "${FLOOR_ARGS[@]}"
}
batched_strata() {
  measure batched strata "$2" "$1" json "$WORK/sb.json" "$BUILD/strata_bench" --mode batched \
    "${DATA_ARGS[@]}" --data chat --batch 16 --epochs "$BATCHED_EPOCHS" --warmup-epochs 1 \
    --threads "$2" --json "$WORK/sb.json"
}
batched_torch() {
  measure batched torch "$2" "$1" json "$WORK/t.json" "${TORCH[@]}" --mode batched --data chat \
    --batch 16 --epochs "$BATCHED_EPOCHS" --warmup-epochs 1 --threads "$2" --json "$WORK/t.json"
}
SCALE_ARGS=(--d 512 --hidden 2048 --layers 6 --seq-len 256 --batch 16 --vocab 4096
            --steps "$SCALE_STEPS" --warmup-steps "$SCALE_WARMUP")
scale_strata() {
  measure scale strata "$2" "$1" json "$WORK/sb.json" "$BUILD/strata_bench" --mode scale \
    "${SCALE_ARGS[@]}" --threads "$2" --json "$WORK/sb.json"
}
scale_torch() {
  measure scale torch "$2" "$1" json "$WORK/t.json" "${TORCH[@]}" --mode scale "${SCALE_ARGS[@]}" \
    --threads "$2" --json "$WORK/t.json"
}
generate_strata() {
  measure generate strata "$2" "$1" json "$WORK/sb.json" "$BUILD/strata_bench" --mode generate \
    "${DATA_ARGS[@]}" --gen-tokens 40 --gen-reps "$GEN_REPS" --threads "$2" --json "$WORK/sb.json"
}
generate_torch() {
  measure generate torch "$2" "$1" json "$WORK/t.json" "${TORCH[@]}" --mode generate \
    --gen-tokens 40 --gen-reps "$GEN_REPS" --threads "$2" --json "$WORK/t.json"
}

start=$(date +%s)
for rep in $(seq 1 "$REPS"); do
  echo "--- repetition $rep/$REPS"
  if ! skip SKIP_GEMM; then
    for t in "${THREAD_LIST[@]}"; do gemm_strata "$rep" "$t"; done
  fi
  if ! skip SKIP_RECIPE; then
    for t in "${THREAD_LIST[@]}"; do
      if [ "$t" = 1 ]; then
        pair recipe_strata recipe_torch "$rep" 1
        [ -n "$FLOOR" ] && recipe_floor "$rep"
      else
        recipe_strata "$rep" "$t"
      fi
    done
  fi
  for w in batched scale generate; do
    W=${w^^}
    skip "SKIP_$W" && continue
    for t in "${THREAD_LIST[@]}"; do pair "${w}_strata" "${w}_torch" "$rep" "$t"; done
  done
done
echo "--- done in $(( $(date +%s) - start )) s; results in $RESULTS"
"$PY" "$HERE/summarize.py" "$OUT" | tee "$OUT/summary.md"
