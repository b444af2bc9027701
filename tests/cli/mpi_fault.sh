#!/usr/bin/env bash
# A rank that dies or hangs never hangs the others (issue 13):
#  - kill -9 of rank 1 mid-run: rank 0 exits within BOUND seconds, non-zero, with one
#    `strata: error: rank 0: ...` line naming rank 1 and its pid, and the checkpoint it
#    names loads (generate) and resumes;
#  - rank 1 stopped (SIGSTOP, a hang mpirun cannot see): rank 0 gives up after
#    STRATA_MPI_TIMEOUT seconds with a message saying so.
# Open MPI 4.1's mpirun sends the surviving ranks SIGTERM about 1 s after a rank dies
# and SIGKILL about 1 s later; Strata's wait gives a signalled rank 0.5 s. BOUND leaves
# room for a loaded machine.
# Usage: mpi_fault.sh path/to/strata MPIRUN [MPIRUN ARGS...]
source "$(dirname "$0")/mpi_lib.sh" "$@"
BOUND=10

sed 's/epochs: 60, batch: 40/epochs: 2000, batch: 8, shuffle: true/; s/checkpoint_every: 0/checkpoint_every: 10/' \
  "$SRC/tests/configs/mpi_rustgpt.yaml" >long.yaml

# Starts a 2-rank run into DIR in the background; sets MPIRUN_PID.
start_run() {
  "${MPIRUN[@]}" -np 2 "$STRATA" train long.yaml --out "$1" >"$OUT/$1.out" 2>"$OUT/$1.err" &
  MPIRUN_PID=$!
}

# Waits for mpirun to end; sets RC and SECONDS_TAKEN (since START).
wait_run() {
  wait "$MPIRUN_PID"
  RC=$?
  SECONDS_TAKEN=$(echo "$(now) - $START" | bc)
}

CASES=$((CASES + 1))
start_run killed
if wait_for_checkpoint killed 19 "$MPIRUN_PID"; then
  victim=$(rank_pid "$MPIRUN_PID" 1)
  START=$(now)
  kill -9 "$victim"
  wait_run
  message=$(grep '^strata: error: rank 0: ' "$OUT/killed.err")
  echo "kill -9 rank 1 (pid $victim): mpirun exited $RC after ${SECONDS_TAKEN} s; rank 0 said: $message"
  [ "$RC" -ne 0 ] || fail "kill: mpirun exited 0"
  (($(echo "$SECONDS_TAKEN < $BOUND" | bc))) || fail "kill: the job took $SECONDS_TAKEN s to end"
  grep -q "rank 1 (pid $victim on .*) has died; training stopped in step [0-9]*; the checkpoint of step [0-9]* in killed/checkpoint is intact" <<<"$message" ||
    fail "kill: rank 0's message does not name rank 1 and the checkpoint: $(cat "$OUT/killed.err")"
  expect_ok "the checkpoint after the kill loads" -- "$STRATA" generate killed --prompt "the" --max-tokens 2
else
  fail "kill: no checkpoint past step 19 appeared: $(cat "$OUT/killed.err")"
fi

CASES=$((CASES + 1))
export STRATA_MPI_TIMEOUT=2
start_run stopped
if wait_for_checkpoint stopped 19 "$MPIRUN_PID"; then
  victim=$(rank_pid "$MPIRUN_PID" 1)
  START=$(now)
  kill -STOP "$victim"
  wait_run
  kill -9 "$victim" 2>/dev/null
  message=$(grep '^strata: error: rank 0: ' "$OUT/stopped.err")
  echo "SIGSTOP rank 1: mpirun exited $RC after ${SECONDS_TAKEN} s; rank 0 said: $message"
  [ "$RC" -ne 0 ] || fail "stop: mpirun exited 0"
  (($(echo "$SECONDS_TAKEN < 2 + $BOUND" | bc))) || fail "stop: the job took $SECONDS_TAKEN s to end"
  grep -q "no answer from the other ranks for 2 s (STRATA_MPI_TIMEOUT)" <<<"$message" ||
    fail "stop: rank 0's message does not give the timeout: $(cat "$OUT/stopped.err")"
else
  fail "stop: no checkpoint past step 19 appeared: $(cat "$OUT/stopped.err")"
fi
unset STRATA_MPI_TIMEOUT

# Ranks started on different configs or data (mpirun's A : B form) refuse to train, each
# with the same line, and leave nothing behind.
cp "$SRC/tests/configs/mpi_rustgpt.yaml" a.yaml
sed 's/seed: 42/seed: 43/' a.yaml >b.yaml
sed 's/"/"x /' data/pretraining.json >other.json
EXPECT_RC=1 expect_error "ranks on different configs" \
  "the configs differ between ranks: rank 0 has " -- \
  "${MPIRUN[@]}" -np 1 "$STRATA" train a.yaml --out mismatch : -np 1 "$STRATA" train b.yaml --out mismatch
grep -q "^strata: error: rank 1: the configs differ between ranks" "$OUT/stderr.txt" ||
  fail "rank 1 did not report the mismatch: $(cat "$OUT/stderr.txt")"
EXPECT_RC=1 expect_error "ranks on different data" \
  "the training data differ between ranks: rank 0 has " -- \
  "${MPIRUN[@]}" -np 1 "$STRATA" train a.yaml --out mismatch : \
  -np 1 "$STRATA" train a.yaml --out mismatch --data pretrain=other.json
# A classifier is not data parallel (yet): refused, not trained twice.
{
  echo "x,y,label"
  for i in $(seq 0 19); do echo "$((i % 3)),$((i % 5)),$((i % 2))"; done
} >rows.csv
cat >cls.yaml <<'YAML'
task: {type: classification, data: rows.csv, features: 2, classes: 2}
model: {layers: [{type: Linear, out: 2}]}
optimizer: {type: Adam, lr: 1.0e-2}
training: {phases: [{name: train, epochs: 2, batch: 4}]}
YAML
EXPECT_RC=1 expect_error "a classifier over MPI" \
  "train over MPI (2 ranks): only language-model tasks are data parallel; run this one in a single process" -- \
  "${MPIRUN[@]}" -np 2 "$STRATA" train cls.yaml --out cls
EXPECT_RC=1 expect_error "bad STRATA_MPI_TIMEOUT" \
  'STRATA_MPI_TIMEOUT: must be a number of seconds in (0, 1e6], got "soon"' -- \
  env STRATA_MPI_TIMEOUT=soon "$STRATA" train a.yaml --out never
finish
