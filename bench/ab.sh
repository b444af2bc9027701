#!/usr/bin/env bash
# Before and after a change, side by side in one run: two checkouts of Strata (each with
# its own build/ and its own bench/run.sh) benchmarked one repetition at a time, A, B,
# B, A, A, B... (the order flips every repetition, so neither side always runs first
# or last), then the summary of each side and a table of B against A per row.
#
#   bench/ab.sh TREE_A TREE_B          e.g. a `git worktree add /tmp/old <commit>` with
#                                      scripts/build.sh run in it, and this checkout
#
# A row is "within noise" when the two sides' ranges over the repetitions overlap; a
# machine whose speed drifts during the run shows in the SGEMM row and in the floor,
# which is why the recipe is also given relative to its floor of the same repetition.
#
# Knobs (environment): REPS=3; OUT=dir (default ${TMPDIR:-/tmp}/strata-ab/<timestamp>);
# A_ENV / B_ENV: extra variables for one side's run.sh (e.g. B_ENV="SKIP_TORCH=0");
# SKIP_TORCH defaults to 1 on both sides (PyTorch does not change between A and B);
# every other variable of bench/run.sh (OPENBLAS_CORETYPE, WAIT_QUIET, SHARED_DIR...)
# passes to both.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
[ $# = 2 ] || { echo "usage: bench/ab.sh TREE_A TREE_B" >&2; exit 2; }
A=$(cd "$1" && pwd) B=$(cd "$2" && pwd)
for tree in "$A" "$B"; do
  [ -x "$tree/bench/run.sh" ] || { echo "$tree has no bench/run.sh" >&2; exit 2; }
done
REPS=${REPS:-3}
OUT=${OUT:-${TMPDIR:-/tmp}/strata-ab/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
export SKIP_TORCH=${SKIP_TORCH:-1} SHARED_DIR=${SHARED_DIR:-$(dirname "$(dirname "$HERE")")/shared}
echo "A: $A ($(git -C "$A" rev-parse --short HEAD))   B: $B ($(git -C "$B" rev-parse --short HEAD))"
echo "results -> $OUT   (REPS=$REPS)"

side() {  # LABEL TREE REP EXTRA_ENV
  echo "--- repetition $3: $1"
  env $4 REPS=1 OUT="$OUT/$1-$3" "$2/bench/run.sh" >"$OUT/$1-$3.log" 2>&1 ||
    { echo "$1 repetition $3 failed: $OUT/$1-$3.log" >&2; exit 1; }
}
for rep in $(seq 1 "$REPS"); do
  if [ $((rep % 2)) = 1 ]; then
    side a "$A" "$rep" "${A_ENV:-}"; side b "$B" "$rep" "${B_ENV:-}"
  else
    side b "$B" "$rep" "${B_ENV:-}"; side a "$A" "$rep" "${A_ENV:-}"
  fi
done
/usr/bin/python3 "$HERE/summarize.py" "$OUT"/a-* >"$OUT/summary-a.md"
/usr/bin/python3 "$HERE/summarize.py" "$OUT"/b-* >"$OUT/summary-b.md"
/usr/bin/python3 - "$HERE" "$OUT" <<'PY' | tee "$OUT/ab.md"
import glob, statistics, sys
sys.path.insert(0, sys.argv[1])
from summarize import Table, load

out = sys.argv[2]
tables = [Table(load(sorted(glob.glob(f"{out}/{s}-*")))[0]) for s in "ab"]
rows = [("SGEMM 2048^3, GFLOP/s", "gemm", "strata", "gflops", False),
        ("recipe, s", "recipe", "strata", "time", True),
        ("recipe floor, s", "recipe", "floor", "time", True),
        ("batch 16, tokens/s", "batched", "strata", "tok_s", False),
        ("d=512, GFLOP/s", "scale", "strata", "gflops", False),
        ("d=512, peak RSS MB", "scale", "strata", "rss", True),
        ("generation (KV cache), ms/token", "generate", "strata", "ms_tok", True),
        ("recipe, peak RSS MB", "recipe", "strata", "rss", True)]

def values(t, w, s, th, m):
    return t.v.get((w, s, th, m), [])

def fmt(vals):
    if not vals:
        return "-"
    return f"{statistics.median(vals):.4g} [{min(vals):.4g}..{max(vals):.4g}]"

print("| row | threads | A median [range] | B median [range] | B/A | verdict |")
print("|---|---|---|---|---|---|")
for label, w, s, m, lower in rows:
    for th in (1, 2):
        a, b = values(tables[0], w, s, th, m), values(tables[1], w, s, th, m)
        if not a or not b:
            continue
        r = statistics.median(b) / statistics.median(a)
        overlap = min(max(a), max(b)) >= max(min(a), min(b))
        better = (r < 1) == lower
        verdict = "within noise" if overlap else ("B better" if better else "**B worse**")
        print(f"| {label} | {th} | {fmt(a)} | {fmt(b)} | {r:.3f} | {verdict} |")
# The recipe relative to the floor of the same repetition: machine drift cancels.
for th in (1, 2):
    cells = []
    for t in tables:
        strata = values(t, "recipe", "strata", th, "time")
        floor = values(t, "recipe", "floor", 1, "time")
        cells.append([x / f for x, f in zip(strata, floor)])
    a, b = cells
    if a and b:
        r = statistics.median(b) / statistics.median(a)
        overlap = min(max(a), max(b)) >= max(min(a), min(b))
        verdict = "within noise" if overlap else ("B better" if r < 1 else "**B worse**")
        print(f"| recipe / its floor | {th} | {fmt(a)} | {fmt(b)} | {r:.3f} | {verdict} |")
PY
