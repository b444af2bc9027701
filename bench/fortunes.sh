#!/usr/bin/env bash
# configs/fortunes.yaml, Strata against a PyTorch twin of the same model, side by side.
#
# Strata trains STEPS steps (--stop-at-step), saving its initial weights (--save-initial)
# and each batch's token windows (--trace-batches); bench/fortunes_batches.py turns the
# trace and the run's token file into arrays; bench/gpt_torch.py trains the same
# architecture from the same weights on the same windows in the same order, with the
# same AdamW, clip and schedule. Then both report the validation loss on the same
# held-out windows and the training tokens/s. Runs interleave: Strata 1T, PyTorch 1T,
# Strata 2T, PyTorch 2T (THREADS=1,2).
#
# Knobs: STEPS=40  THREADS=1,2  BUILD_DIR=build  PYTHON=/usr/bin/python3  OUT=dir
#        OPENBLAS_CORETYPE (both sides; unset: strata picks the CPU's kernels, see
#        app/main.cpp, and torch the ones OpenBLAS picks)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=$(cd "${BUILD_DIR:-$ROOT/build}" && pwd)
PY=${PYTHON:-/usr/bin/python3}
STEPS=${STEPS:-40}
IFS=, read -r -a THREAD_LIST <<< "${THREADS:-1,2}"
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/strata-fortunes.XXXXXX")}
mkdir -p "$OUT"
CONFIG=$ROOT/configs/fortunes.yaml
# The config's optimizer and schedule, given to the PyTorch side.
TORCH_ARGS=(--heads 4 --lr 1e-3 --betas 0.9 0.95 --eps 1e-8 --weight-decay 0.1 --clip-norm 1.0
            --warmup 50 --min-lr 1e-4)
echo "# host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-} STEPS=$STEPS results in $OUT"

strata_run() {  # THREADS DIR [extra args]
  local threads=$1 dir=$2; shift 2
  "$BUILD/strata" train "$CONFIG" --out "$dir" --threads "$threads" --stop-at-step "$STEPS" \
    --set training.eval_every="$STEPS" --set generation.every=0 "$@" >"$dir.log" 2>&1
}
# Training tokens/s of steps.csv's rows after the first 2: tokens over summed step times.
strata_rate() {
  awk -F, -v bt=$((16 * 128)) 'NR > 3 { t += bt / $7; n += bt } END { printf "%.1f", n / t }' "$1/steps.csv"
}

for threads in "${THREAD_LIST[@]}"; do
  dir=$OUT/strata_${threads}t
  if [ ! -d "$OUT/arrays" ]; then  # the first run also records what PyTorch needs
    strata_run "$threads" "$dir" --save-initial --trace-batches "$OUT/trace.txt"
    mkdir -p "$OUT/arrays"
    "$PY" "$HERE/fortunes_batches.py" --tokens "$dir/cache/pretrain.tokens" --trace "$OUT/trace.txt" \
      --window 129 --stride 128 --batch 16 --epochs 1 --out "$OUT/arrays"
    cp "$dir/initial/checkpoint/model.npz" "$OUT/arrays/initial.npz"
    PHASE_STEPS=$(cat "$OUT/arrays/phase_steps.txt")
  else
    strata_run "$threads" "$dir"
  fi
  val=$(awk -F, -v s="$STEPS" '$1 == s { print $4 }' "$dir/validation.csv")
  echo "{\"side\": \"strata\", \"threads\": $threads, \"steps\": $STEPS, \"validation_loss\": $val, \"tokens_per_second\": $(strata_rate "$dir")}" | tee -a "$OUT/results.jsonl"
  params=$(sed -n 's/^model: \([0-9]*\) parameters.*/\1/p' "$dir.log")
  # The SGEMM ceiling at this thread count: what no training step's products can beat.
  "$BUILD/strata_bench" --mode gemm --threads "$threads" --shapes 2048x2048x2048 \
    --json "$OUT/gemm.json" >/dev/null
  gflops=$("$PY" -c 'import json, sys; print(json.loads(open(sys.argv[1]).readlines()[-1])["gflops_median"])' "$OUT/gemm.json")
  echo "{\"side\": \"ceiling\", \"threads\": $threads, \"gflops\": $gflops, \"parameters\": $params}" | tee -a "$OUT/results.jsonl"
  "$PY" "$HERE/gpt_torch.py" --init "$OUT/arrays/initial.npz" --batches "$OUT/arrays/batches.npy" \
    --validation "$OUT/arrays/validation.npy" --steps "$STEPS" --total-steps "$PHASE_STEPS" \
    --threads "$threads" "${TORCH_ARGS[@]}" | tee -a "$OUT/results.jsonl"
done
"$PY" - "$OUT/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
# Model FLOPs per training token as nanoGPT/llm.c count them: 6 N + 12 L T d, N the
# parameters but the position table (the tied output projection counts); the config's
# 4 blocks, T = 128, d = 256.
print("\n| threads | Strata val loss | PyTorch val loss | difference | Strata tok/s | PyTorch tok/s | ratio "
      "| Strata GFLOP/s (% of SGEMM ceiling) | PyTorch GFLOP/s | 2x PyTorch needs |")
print("|---|---|---|---|---|---|---|---|---|---|")
for t in sorted({r["threads"] for r in rows}):
    s = next(r for r in rows if r["side"] == "strata" and r["threads"] == t)
    p = next(r for r in rows if r["side"] == "pytorch" and r["threads"] == t)
    c = next(r for r in rows if r["side"] == "ceiling" and r["threads"] == t)
    flops = 6 * (c["parameters"] - 128 * 256) + 12 * 4 * 128 * 256
    gs, gp = s["tokens_per_second"] * flops / 1e9, p["tokens_per_second"] * flops / 1e9
    d = abs(s["validation_loss"] - p["validation_loss"]) / p["validation_loss"]
    print(f"| {t} | {s['validation_loss']:.4f} | {p['validation_loss']:.4f} | {100*d:.2f}% | "
          f"{s['tokens_per_second']:.0f} | {p['tokens_per_second']:.0f} | "
          f"{s['tokens_per_second']/p['tokens_per_second']:.2f}x | {gs:.1f} ({100*gs/c['gflops']:.0f}%) | "
          f"{gp:.1f} | {100*2*gp/c['gflops']:.0f}% of {c['gflops']:.0f} |")
PY
