#!/usr/bin/env bash
# Training whose loss becomes NaN stops with exit status 1 and a message naming the
# step, and keeps the last good checkpoint intact and loadable.
# Usage: divergence.sh path/to/strata
source "$(dirname "$0")/lib.sh" "$1"

write_tiny_run
# Plain SGD at lr 1000 blows up: the loss is NaN at step 6 (checkpoints every 2 steps).
sed 's/type: Adam, lr: 0.01, clip_norm: 5.0/type: SGD, lr: 1000/; s/epochs: 3/epochs: 50/' tiny.yaml >diverge.yaml

manifest_step() { grep -o '"step": [0-9]*' "$1/checkpoint/manifest.json" | grep -o '[0-9]*$'; }

"$STRATA" train diverge.yaml --out run >"$OUT/stdout.txt" 2>"$OUT/stderr.txt"
rc=$?
message=$(cat "$OUT/stderr.txt")
echo "diverging run: exit $rc: $message"
[ "$rc" -eq 1 ] || fail "diverging run: exit status $rc, expected 1"
grep -qF 'training stopped at step 6 (phase "p", epoch 2): the loss is not finite' <<<"$message" ||
  fail "diverging run: the message does not name step 6: $message"
grep -qF 'the last good checkpoint, from step 4, is kept in run/checkpoint' <<<"$message" ||
  fail "diverging run: the message does not name the kept checkpoint: $message"
[ "$(manifest_step run)" = 4 ] || fail "the kept checkpoint is at step $(manifest_step run), expected 4"
[ -z "$(find run -name '*.tmp-*')" ] || fail "temporary files left: $(find run -name '*.tmp-*')"
# Intact: every checksum verifies and the model answers.
expect_ok "generate from the kept checkpoint" -- "$STRATA" generate run --prompt "the cat" --max-tokens 3
# Its values are finite: a resumed run replays steps 5 and 6 and stops at the same step.
"$STRATA" train --resume run >"$OUT/stdout.txt" 2>"$OUT/stderr.txt"
rc=$?
[ "$rc" -eq 1 ] && grep -qF 'training stopped at step 6' "$OUT/stderr.txt" ||
  fail "resumed diverging run: exit $rc: $(cat "$OUT/stderr.txt")"
[ "$(manifest_step run)" = 4 ] || fail "the resumed run replaced the checkpoint"

# Divergence before any checkpoint says so, and leaves no run directory.
sed 's/lr: 1000/lr: 1.0e+12/' diverge.yaml >early.yaml
"$STRATA" train early.yaml --out early >/dev/null 2>"$OUT/stderr.txt"
rc=$?
echo "early divergence: exit $rc: $(cat "$OUT/stderr.txt")"
[ "$rc" -eq 1 ] && grep -qF 'training stopped at step 2 (phase "p", epoch 1): the loss is not finite' "$OUT/stderr.txt" &&
  grep -qF 'no checkpoint was saved' "$OUT/stderr.txt" || fail "early divergence: exit $rc: $(cat "$OUT/stderr.txt")"
[ ! -e early ] || fail "early divergence left files: $(find early)"

finish
