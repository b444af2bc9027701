#!/usr/bin/env bash
# SIGINT, SIGTERM and SIGHUP during `strata train`: the run stops after the step in
# progress, saves a checkpoint of that position (the config checkpoints only at phase
# ends), says where it is and how to resume, and exits with 128 + the signal. Resuming
# after each interruption ends exactly where an uninterrupted run does: the same
# metrics rows and the same weights, byte for byte. A second signal quits at once and
# leaves the previous checkpoint usable.
# Usage: signal_resume.sh path/to/strata
source "$(dirname "$0")/lib.sh" "$1"

write_tiny_run
# 4 examples, batch 1: 4 steps an epoch; checkpoints only at the two phase ends.
cat >long.yaml <<'YAML'
seed: 3
model:
  max_seq_len: 16
  layers:
    - {type: Embedding, dim: 32}
    - {type: TransformerBlock, name: blocks, repeat: 1, dim: 32, hidden: 64}
    - {type: OutputProjection}
optimizer: {type: Adam, lr: 0.01, clip_norm: 5.0}
training:
  checkpoint_every: 0
  phases:
    - {name: p, data: data.json, epochs: 6000, batch: 1, shuffle: true}
    - {name: q, data: data.json, epochs: 2000, batch: 1, shuffle: true}
YAML
TOTAL=32000

manifest_step() { grep -o '"step": [0-9]*' "$1/checkpoint/manifest.json" 2>/dev/null | grep -o '[0-9]*$'; }
rows() { [ -f "$1/metrics.csv" ] && wc -l <"$1/metrics.csv" || echo 0; }

expect_ok "uninterrupted run" -- "$STRATA" train long.yaml --out whole

# Runs COMMAND in the background until DIR/metrics.csv has more than ROWS lines, then
# sends SIGNAL; sets RC and leaves stderr in $OUT/signal.err.
run_and_signal() {
  local signal=$1 rows_before=$2
  shift 2
  "$@" >"$OUT/signal.out" 2>"$OUT/signal.err" &
  local pid=$!
  for _ in $(seq 1 3000); do
    [ "$(rows run)" -gt "$rows_before" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
  done
  kill "-$signal" "$pid" 2>/dev/null
  wait "$pid"
  RC=$?
}

# Checks one interruption: status, message, and a checkpoint at the step it names.
check_stopped() {
  local name=$1 signal=$2 expected_rc=$3
  CASES=$((CASES + 1))
  local message step
  message=$(cat "$OUT/signal.err")
  step=$(grep -o "stopped after step [0-9]*" <<<"$message" | grep -o '[0-9]*$')
  if [ "$RC" -ne "$expected_rc" ]; then
    fail "$name: exit status $RC (expected $expected_rc); stderr: $message"
  elif ! grep -qF "strata: $signal: stopped after step $step; checkpoint saved in run/checkpoint" <<<"$message" ||
    ! grep -qxF "resume with: strata train --resume run" <<<"$message"; then
    fail "$name: message: $message"
  elif [ "$(manifest_step run)" != "$step" ]; then
    fail "$name: the checkpoint is at step $(manifest_step run), the message says $step"
  elif [ "$step" -le 0 ] || [ "$step" -ge "$TOTAL" ]; then
    fail "$name: step $step is not inside the run"
  else
    printf '| %-34s | rc %s | %s |\n' "$name" "$RC" "${message//$'\n'/ }"
  fi
}

run_and_signal INT 50 "$STRATA" train long.yaml --out run
check_stopped "SIGINT mid-phase" SIGINT 130
first=$(manifest_step run)
[ -n "$first" ] && [ "$first" -lt 24000 ] || fail "SIGINT did not land inside phase p (step ${first:-none})"

run_and_signal TERM "$(rows run)" "$STRATA" train --resume run
check_stopped "SIGTERM after a resume" SIGTERM 143
run_and_signal HUP "$(rows run)" "$STRATA" train --resume run
check_stopped "SIGHUP after a resume" SIGHUP 129

# Two signals in a row: the second quits at once (the process dies by it) wherever it
# lands; the checkpoint on disk is still a whole one, and the run resumes from it. The
# process is stopped while both are sent, so that neither is handled before the other
# arrives (two SIGINTs would merge into one: SIGINT, then SIGTERM).
before=$(manifest_step run)
rows_before=$(rows run)
"$STRATA" train --resume run >"$OUT/signal.out" 2>"$OUT/signal.err" &
pid=$!
for _ in $(seq 1 3000); do
  [ "$(rows run)" -gt "$rows_before" ] && break
  sleep 0.01
done
kill -STOP "$pid" && kill -INT "$pid" && kill -TERM "$pid" && kill -CONT "$pid"
wait "$pid"
rc=$?
CASES=$((CASES + 1))
# Either may be handled first (the other is then the second, which kills).
[ "$rc" -eq 130 ] || [ "$rc" -eq 143 ] || fail "second signal: exit status $rc, expected 130 or 143"
grep -qF "quitting at once; the previous checkpoint is kept" "$OUT/signal.err" ||
  fail "second signal: no 'quitting at once' message: $(cat "$OUT/signal.err")"
grep -qF "resume with" "$OUT/signal.err" && fail "second signal: the run went on to save: $(cat "$OUT/signal.err")"
after=$(manifest_step run)
[ "$after" = "$before" ] || fail "second signal: checkpoint step ${after:-none}, was $before"
printf '| %-34s | rc %s | %s |\n' "SIGINT then SIGTERM" "$rc" "$(tr '\n' ' ' <"$OUT/signal.err")"
expect_ok "generate after a second signal" -- "$STRATA" generate run --prompt "the cat" --max-tokens 2

expect_ok "final resume" -- "$STRATA" train --resume run
grep -q "^trained $TOTAL steps" "$OUT/stdout.txt" || fail "final resume did not finish: $(tail -2 "$OUT/stdout.txt")"

# Nothing lost and nothing repeated: identical weights, optimizer state and metrics.
for f in model.npz optimizer.npz vocab.txt config.yaml; do
  cmp -s whole/checkpoint/$f run/checkpoint/$f || fail "$f differs from the uninterrupted run"
done
if ! diff <(cut -d, -f1-6 whole/metrics.csv) <(cut -d, -f1-6 run/metrics.csv) >"$OUT/metrics.diff"; then
  fail "metrics.csv differs from the uninterrupted run: $(head -8 "$OUT/metrics.diff")"
fi
[ -z "$(find run -name '*.tmp-*')" ] || fail "temporaries left after the final resume: $(find run -name '*.tmp-*')"

finish
