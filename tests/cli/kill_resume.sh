#!/usr/bin/env bash
# `kill -9` during training, then `strata train --resume`: the checkpoint is never torn
# (it loads after every kill), and the resumed run ends exactly where an uninterrupted
# one does: the same final weights, byte for byte, and the same metrics rows.
# Usage: kill_resume.sh path/to/strata
source "$(dirname "$0")/lib.sh" "$1"

write_tiny_run
# 4 examples, batch 1, shuffled: 4 steps an epoch, 1000 steps; a checkpoint every 7
# steps (inside epochs). Saving dominates the run time (each save syncs to disk), so
# most kills land in the middle of a save.
sed 's/epochs: 3, batch: 1}/epochs: 250, batch: 1, shuffle: true}/; s/checkpoint_every: 2/checkpoint_every: 7/;
     s/dim: 8}/dim: 32}/; s/dim: 8, hidden: 16/dim: 32, hidden: 64/' tiny.yaml >long.yaml

manifest_step() { grep -o '"step": [0-9]*' "$1/checkpoint/manifest.json" 2>/dev/null | grep -o '[0-9]*$'; }

# The uninterrupted reference.
expect_ok "uninterrupted run" -- "$STRATA" train long.yaml --out whole

# Starts COMMAND in the background, waits until the checkpoint passes step AFTER,
# sleeps a little more, then kill -9. Returns 1 if training ended before the kill.
run_and_kill() {
  local after=$1 delay=$2
  shift 2
  "$@" >>"$OUT/killed.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 3000); do
    local step
    step=$(manifest_step run)
    [ -n "$step" ] && [ "$step" -gt "$after" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
  done
  sleep "$delay"
  if kill -9 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null
    return 0
  fi
  wait "$pid" 2>/dev/null
  return 1
}

kills=0
run_and_kill 0 0.005 "$STRATA" train long.yaml --out run && kills=$((kills + 1))
for delay in 0.01 0 0.02; do
  step=$(manifest_step run)
  # Never torn: the checkpoint left by the kill verifies and answers.
  expect_ok "generate after kill $kills (checkpoint at step $step)" -- \
    "$STRATA" generate run --prompt "the cat" --max-tokens 2
  run_and_kill "$step" "$delay" "$STRATA" train --resume run && kills=$((kills + 1))
done
echo "killed $kills times; checkpoint at step $(manifest_step run) before the last resume"
[ "$kills" -ge 2 ] || fail "training ended before it could be killed ($kills kills): make it longer"
expect_ok "generate after the last kill" -- "$STRATA" generate run --prompt "the cat" --max-tokens 2
expect_ok "final resume" -- "$STRATA" train --resume run
grep -q '^trained 1000 steps' "$OUT/stdout.txt" || fail "final resume did not finish: $(tail -2 "$OUT/stdout.txt")"

# Nothing lost and nothing repeated: identical weights, optimizer state and metrics.
for f in model.npz optimizer.npz vocab.txt config.yaml; do
  cmp -s whole/checkpoint/$f run/checkpoint/$f || fail "$f differs from the uninterrupted run"
done
# Columns phase,epoch,step,loss,lr,tokens (not the timings).
if ! diff <(cut -d, -f1-6 whole/metrics.csv) <(cut -d, -f1-6 run/metrics.csv) >"$OUT/metrics.diff"; then
  fail "metrics.csv differs from the uninterrupted run: $(head -8 "$OUT/metrics.diff")"
fi
[ "$(wc -l <run/metrics.csv)" -eq 251 ] || fail "metrics.csv has $(wc -l <run/metrics.csv) lines, expected 251"
[ -z "$(find run -name '*.tmp-*')" ] || fail "temporaries left after the final resume: $(find run -name '*.tmp-*')"

finish
