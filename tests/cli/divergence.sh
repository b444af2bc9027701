#!/usr/bin/env bash
# Training that diverges stops with exit status 1 and a message naming the step at which
# it stopped and the checkpoint it kept; that checkpoint is intact, holds only finite
# values, predates the divergence, and resuming from it diverges again at the same step
# (resume is bit-exact). Which step the loss first turns non-finite is an accident of
# the arithmetic: the test reads it from the message rather than expecting one.
# Usage: divergence.sh path/to/strata
source "$(dirname "$0")/lib.sh" "$1"

write_tiny_run
# Plain SGD at lr 1000 blows up within a few steps (checkpoints every 2 steps).
sed 's/type: Adam, lr: 0.01, clip_norm: 5.0/type: SGD, lr: 1000/; s/epochs: 3/epochs: 50/' tiny.yaml >diverge.yaml

manifest_step() { grep -o '"step": [0-9]*' "$1/checkpoint/manifest.json" | grep -o '[0-9]*$'; }
# "training stopped at step N (phase ..." -> N
stopped_step() { sed -n 's/.*training stopped at step \([0-9][0-9]*\) (phase "p", epoch [0-9][0-9]*): .* not finite.*/\1/p' "$1" | head -n 1; }

# Every float32 in the .npy members of a stored (uncompressed) .npz is finite: prints
# the number of values checked, or the first non-finite one's member and fails. (SGD
# without momentum has no state: its optimizer.npz has no members.)
npz_all_finite() {
  perl -e '
    local $/; open my $f, "<:raw", $ARGV[0] or die "$ARGV[0]: $!"; my $d = <$f>; my ($at, $n) = (0, 0);
    while (substr($d, $at, 4) eq "PK\x03\x04") {
      my ($method, $size, $name_len, $extra_len) = unpack "v x8 V x4 v v", substr($d, $at + 8, 22);
      die "compressed member\n" if $method;
      my $name = substr($d, $at + 30, $name_len);
      my $npy = substr($d, $at + 30 + $name_len + $extra_len, $size);
      my ($major) = unpack "C", substr($npy, 6, 1);
      my $header_len = $major == 1 ? unpack("v", substr($npy, 8, 2)) : unpack("V", substr($npy, 8, 4));
      my $start = ($major == 1 ? 10 : 12) + $header_len;
      die "$name: not float32\n" unless substr($npy, 0, $start) =~ /<f4/;
      for my $v (unpack "f<*", substr($npy, $start)) {
        $n++;
        die "$name: non-finite value $v\n" if $v != $v || $v == 9**9**9 || $v == -9**9**9;
      }
      $at += 30 + $name_len + $extra_len + $size;
    }
    print "$n\n";' "$1"
}

"$STRATA" train diverge.yaml --out run >"$OUT/stdout.txt" 2>"$OUT/stderr.txt"
rc=$?
message=$(cat "$OUT/stderr.txt")
echo "diverging run: exit $rc: $message"
[ "$rc" -eq 1 ] || fail "diverging run: exit status $rc, expected 1"
grep -q '^strata: error: ' "$OUT/stderr.txt" || fail "diverging run: no 'strata: error:' line: $message"
stop=$(stopped_step "$OUT/stderr.txt")
[ -n "$stop" ] || fail "diverging run: the message does not say where training stopped: $message"
kept=$(manifest_step run)
grep -qF "the last good checkpoint, from step $kept, is kept in run/checkpoint" <<<"$message" ||
  fail "diverging run: the message does not name the kept checkpoint (step $kept): $message"
# The kept checkpoint is the last one written before the divergence: checkpoints come
# every 2 steps, and step $stop was not completed.
[ -n "$stop" ] && [ "$kept" -eq $(((stop - 1) / 2 * 2)) ] ||
  fail "the kept checkpoint is at step $kept; training stopped at step $stop"
[ -z "$(find run -name '*.tmp-*')" ] || fail "temporary files left: $(find run -name '*.tmp-*')"
for npz in model optimizer; do
  checked=$(npz_all_finite "run/checkpoint/$npz.npz" 2>&1) ||
    fail "the kept checkpoint's $npz.npz: $checked"
  [ "$npz" != model ] || [ "${checked:-0}" -gt 0 ] 2>/dev/null || fail "model.npz: no values read ($checked)"
done
# Intact: every checksum verifies and the model answers.
expect_ok "generate from the kept checkpoint" -- "$STRATA" generate run --prompt "the cat" --max-tokens 3
# Resuming replays the same steps bit for bit, so it diverges at the same step and
# leaves the checkpoint alone.
"$STRATA" train --resume run >"$OUT/stdout.txt" 2>"$OUT/stderr.txt"
rc=$?
[ "$rc" -eq 1 ] && [ "$(stopped_step "$OUT/stderr.txt")" = "$stop" ] ||
  fail "resumed diverging run (first stopped at step $stop): exit $rc: $(cat "$OUT/stderr.txt")"
[ "$(manifest_step run)" = "$kept" ] || fail "the resumed run replaced the checkpoint"

# Divergence before any checkpoint says so, and leaves no run directory.
sed 's/lr: 1000/lr: 1.0e+12/' diverge.yaml >early.yaml
"$STRATA" train early.yaml --out early >/dev/null 2>"$OUT/stderr.txt"
rc=$?
echo "early divergence: exit $rc: $(cat "$OUT/stderr.txt")"
early_stop=$(stopped_step "$OUT/stderr.txt")
[ "$rc" -eq 1 ] && [ -n "$early_stop" ] && [ "$early_stop" -le 2 ] &&
  grep -qF 'no checkpoint was saved' "$OUT/stderr.txt" || fail "early divergence: exit $rc: $(cat "$OUT/stderr.txt")"
[ ! -e early ] || fail "early divergence left files: $(find early)"

finish
