#!/usr/bin/env bash
# What `strata train` may write where: a new run refuses a directory that already holds
# something (and says what), an unwritable --out is refused before the first step,
# files that only look like Strata's temporaries are never deleted, `--resume SRC --out
# DST` forks into DST without touching SRC, and a resume refuses data that changed.
# Usage: run_directories.sh path/to/strata
source "$(dirname "$0")/lib.sh" "$1"

write_tiny_run
snapshot_of() { (cd "$1" && find . -printf '%p %y\n' | sort && find . -type f -print0 | sort -z | xargs -0 -r md5sum); }

# --- a new run never replaces what is there -----------------------------------------
mkdir killed && printf 'phase,epoch,step,loss,lr,tokens,seconds,tokens_per_s\np,1,4,3.1,0.01,20,0.1,200\n' >killed/metrics.csv
expect_error "metrics.csv without a checkpoint" \
  'killed is not empty (metrics.csv) and holds no checkpoint to resume: pick another --out, or remove what is there (a new run would overwrite metrics.csv)' -- \
  "$STRATA" train tiny.yaml --out killed
mkdir notes && echo 'my notes' >notes/todo.txt && mkdir notes/sub
expect_error "a directory of other files" 'notes is not empty (sub, todo.txt) and holds no checkpoint' -- \
  "$STRATA" train tiny.yaml --out notes
expect_error "--out is a regular file" 'data.json exists and is not a directory: pick another --out' -- \
  "$STRATA" train tiny.yaml --out data.json
mkdir empty
expect_ok "an empty directory is fine" -- "$STRATA" train tiny.yaml --out empty

# --- an unwritable --out is refused before training starts ---------------------------
echo 'a file' >afile
for out in afile/run /proc/strata-run; do
  CASES=$((CASES + 1))
  "$STRATA" train tiny.yaml --out "$out" >"$OUT/stdout.txt" 2>"$OUT/stderr.txt"
  rc=$?
  if [ "$rc" -ne 1 ] || ! grep -qF "strata: error: $out: cannot create directory (" "$OUT/stderr.txt"; then
    fail "unwritable --out $out: status $rc, $(cat "$OUT/stderr.txt")"
  elif [ -s "$OUT/stdout.txt" ]; then  # "model: ..." is printed as training starts
    fail "unwritable --out $out: refused only once training had started: $(cat "$OUT/stdout.txt")"
  else
    printf '| %-34s | %s |\n' "unwritable --out $out" "$(cat "$OUT/stderr.txt")"
  fi
done

# --- files named like temporaries are not Strata's to delete --------------------------
expect_ok "train a run" -- "$STRATA" train tiny.yaml --out run
echo 'keep me' >run/notes.tmp-999999
mkdir run/checkpoint.tmp-999998 && echo 'keep me too' >run/checkpoint.tmp-999998/data.txt
expect_ok "resume beside user files named *.tmp-<pid>" -- "$STRATA" train --resume run
CASES=$((CASES + 1))
[ "$(cat run/notes.tmp-999999 2>/dev/null)" = 'keep me' ] || fail "run/notes.tmp-999999 was deleted"
[ "$(cat run/checkpoint.tmp-999998/data.txt 2>/dev/null)" = 'keep me too' ] ||
  fail "run/checkpoint.tmp-999998/ was deleted"

# --- --resume SRC --out DST forks -----------------------------------------------------
# A run stopped inside its first epoch (SIGINT as soon as it has a checkpoint).
sed 's/epochs: 3, batch: 1}/epochs: 3000, batch: 1}/; s/checkpoint_every: 2/checkpoint_every: 0/' tiny.yaml >long.yaml
expect_ok "uninterrupted long run" -- "$STRATA" train long.yaml --out whole
"$STRATA" train long.yaml --out src >/dev/null 2>"$OUT/src.err" &
pid=$!
for _ in $(seq 1 3000); do
  [ -f src/metrics.csv ] && [ "$(wc -l <src/metrics.csv)" -gt 20 ] && break
  sleep 0.01
done
kill -INT "$pid"
wait "$pid" || true
[ -d src/checkpoint ] || fail "no checkpoint after SIGINT: $(cat "$OUT/src.err")"
before=$(snapshot_of src)
expect_error "fork into a directory with a checkpoint" 'run already holds a checkpoint: pass --resume run' -- \
  "$STRATA" train --resume src --out run
expect_error "fork into a non-empty directory" 'notes is not empty (sub, todo.txt)' -- \
  "$STRATA" train --resume src --out notes
expect_ok "fork src into dst" -- "$STRATA" train --resume src --out dst
grep -q '^forking src at step [0-9]* into dst' "$OUT/stdout.txt" || fail "no fork message: $(head -2 "$OUT/stdout.txt")"
CASES=$((CASES + 1))
[ "$(snapshot_of src)" = "$before" ] || fail "the fork changed src"
for f in model.npz optimizer.npz; do
  cmp -s whole/checkpoint/$f dst/checkpoint/$f || fail "the fork's $f differs from the uninterrupted run"
done
diff <(cut -d, -f1-6 whole/metrics.csv) <(cut -d, -f1-6 dst/metrics.csv) >"$OUT/metrics.diff" ||
  fail "the fork's metrics.csv differs from the uninterrupted run: $(head -5 "$OUT/metrics.diff")"

# --- resume refuses data that changed since the checkpoint -----------------------------
cp data.json data.orig
sed -i 's/birds sing/birds sang/' data.json
expect_error "data changed since the checkpoint" \
  'data.json: the data of phase "p" changed since the checkpoint (now 4 examples, ' -- \
  "$STRATA" train --resume src
cp data.orig data.json
expect_ok "resume with the data put back" -- "$STRATA" train --resume src

finish
