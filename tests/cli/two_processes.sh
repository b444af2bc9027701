#!/usr/bin/env bash
# Two processes, one run directory: while `strata train` runs in DIR, a second `train
# --out DIR` or `train --resume DIR` is refused at once, naming the holder (pid and
# command), and the first run's files are not touched (metrics.csv has one header and
# one run's rows). Once the first has ended, the directory can be resumed.
# Usage: two_processes.sh path/to/strata
source "$(dirname "$0")/lib.sh" "$1"

write_tiny_run
sed 's/epochs: 3, batch: 1}/epochs: 4000, batch: 1}/; s/checkpoint_every: 2/checkpoint_every: 500/' \
  tiny.yaml >long.yaml

rows() { [ -f "$1/metrics.csv" ] && wc -l <"$1/metrics.csv" || echo 0; }

"$STRATA" train long.yaml --out run >"$OUT/first.out" 2>"$OUT/first.err" &
first=$!
for _ in $(seq 1 3000); do
  [ -e run/checkpoint ] && [ "$(rows run)" -gt 2 ] && break
  sleep 0.01
done

# A refused second process: exit status 1 and the holder named, well before the
# first run ends (it is still running afterwards).
refused() {
  local name=$1
  shift
  CASES=$((CASES + 1))
  local start rc message
  start=$(date +%s%N)
  "$@" >/dev/null 2>"$OUT/second.err"
  rc=$?
  message=$(cat "$OUT/second.err")
  local ms=$((($(date +%s%N) - start) / 1000000))
  if [ "$rc" -ne 1 ]; then
    fail "$name: exit status $rc (expected 1); stderr: $message"
  elif ! grep -qF "strata: error: run is in use by another process (pid $first: " <<<"$message" ||
    ! grep -qF "train long.yaml --out run): wait for it to end, or pick another --out" <<<"$message"; then
    fail "$name: message: $message"
  elif ! kill -0 "$first" 2>/dev/null; then
    fail "$name: the first run ended before the second was refused; make it longer"
  else
    printf '| %-34s | %s | %s ms |\n' "$name" "$message" "$ms"
  fi
}
refused "second train --out on the same dir" "$STRATA" train tiny.yaml --out run
refused "--resume of a running run" "$STRATA" train --resume run
refused "--resume DIR --out DIR" "$STRATA" train --resume run --out run/

kill -INT "$first"
wait "$first"
rc=$?
[ "$rc" -eq 130 ] || fail "the first run: exit status $rc after SIGINT, expected 130: $(cat "$OUT/first.err")"
[ "$(grep -c '^phase,' run/metrics.csv)" -eq 1 ] || fail "metrics.csv has more than one header"
step=$(grep -o '"step": [0-9]*' run/checkpoint/manifest.json | grep -o '[0-9]*$')
[ "$(($(rows run) - 1))" -eq "$(grep -o '"metrics_rows": [0-9]*' run/checkpoint/manifest.json | grep -o '[0-9]*$')" ] ||
  fail "metrics.csv has rows the checkpoint (step $step) does not know of"

# The lock went with the process.
expect_ok "resume once the first has ended" -- "$STRATA" train --resume run
grep -q '^trained 16000 steps' "$OUT/stdout.txt" || fail "the resume did not finish: $(tail -2 "$OUT/stdout.txt")"

finish
