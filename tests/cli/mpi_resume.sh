#!/usr/bin/env bash
# Resuming over MPI (issue 13):
#  - a 2-rank run stopped by SIGTERM (sent to both ranks: they agree on the step to stop
#    after, and rank 0 saves it) and resumed on 2 ranks ends bit-identical to an
#    uninterrupted 2-rank run: same weights, optimizer state and metrics rows;
#  - the same checkpoint resumed in one process (the global batch is what counts) gives
#    the uninterrupted 2-rank run's losses within the summation-order bound (mpi_lib.sh).
# Usage: mpi_resume.sh path/to/strata MPIRUN [MPIRUN ARGS...]
source "$(dirname "$0")/mpi_lib.sh" "$@"

# The pre-norm config (shuffled, warmup + cosine, 60 steps) with a checkpoint every 5.
# (Over many more steps at these learning rates two summation orders drift apart
# exponentially, as two float evaluations of any training do: 1e-8 at step 20, 1e-3 at
# step 60, 7e-2 at step 120 of 300; the bound of mpi_lib.sh is for the first 60.)
sed 's/^training:/training:\n  checkpoint_every: 5/' "$SRC/tests/configs/mpi_prenorm.yaml" >run.yaml

expect_ok "uninterrupted 2-rank run" -- "${MPIRUN[@]}" -np 2 "$STRATA" train run.yaml --out whole

CASES=$((CASES + 1))
"${MPIRUN[@]}" -np 2 "$STRATA" train run.yaml --out part >"$OUT/part.out" 2>"$OUT/part.err" &
mpirun_pid=$!
# The first checkpoint (step 5), then the signal at once: on a fast machine the 60 steps
# take well under a second.
if wait_for_checkpoint part 4 "$mpirun_pid" 0.005; then
  kill -TERM "$(rank_pid "$mpirun_pid" 0)" "$(rank_pid "$mpirun_pid" 1)"
fi
wait "$mpirun_pid"
step=$(manifest_step part)
echo "stopped by SIGTERM at step $step: $(grep -m1 'stopped after step' "$OUT/part.err")"
grep -q "^strata: SIGTERM: stopped after step $step; checkpoint saved in part/checkpoint" "$OUT/part.err" ||
  fail "the stopped run did not save where it stopped: $(cat "$OUT/part.err")"
[ "${step:-0}" -lt 60 ] || fail "the run ended before the signal: make it longer"
cp -r part part_one_rank

expect_ok "resume on 2 ranks" -- "${MPIRUN[@]}" -np 2 "$STRATA" train --resume part
for f in model.npz optimizer.npz; do
  cmp -s "whole/checkpoint/$f" "part/checkpoint/$f" || fail "resumed on 2 ranks: $f differs"
done
diff <(cut -d, -f1-6 whole/metrics.csv) <(cut -d, -f1-6 part/metrics.csv) >/dev/null ||
  fail "resumed on 2 ranks: metrics.csv differs from the uninterrupted run"

expect_ok "resume the 2-rank checkpoint in 1 process" -- "$STRATA" train --resume part_one_rank
grep -q '^trained 60 steps' "$OUT/stdout.txt" || fail "1-process resume did not finish"
compare_losses "resumed in 1 process vs 2 ranks" whole part_one_rank
finish
