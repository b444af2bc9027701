#!/usr/bin/env bash
# A classification run through the command line: check, train, evaluate (accuracy on the
# held-out rows of DIR/split.json), and the errors for bad data, for commands that need a
# language model, and for --data. (Resume: tests/classification.cpp.)
# Usage: classification.sh path/to/strata
source "$(dirname "$0")/lib.sh" "$1"

# 60 rows, two features, three well separated classes; a header line.
{
  echo "x,y,label"
  for i in $(seq 0 59); do echo "$((i % 3 * 10 + i % 4)),$((i % 5)),$((i % 3))"; done
} >rows.csv
cat >cls.yaml <<'YAML'
seed: 3
task: {type: classification, data: rows.csv, features: 2, classes: 3, validation_fraction: 0.25,
       feature_scale: 0.1}
model:
  layers:
    - {type: Linear, out: 16}
    - {type: ReLU}
    - {type: Linear, out: 3}
optimizer: {type: Adam, lr: 1.0e-2}
training:
  phases:
    - {name: train, epochs: 40, batch: 8, shuffle: true}
YAML

expect_ok "check a classifier" -- "$STRATA" check cls.yaml
grep -qF "45 rows to train on, 15 held out" "$OUT/stdout.txt" || fail "check does not report the split"
expect_ok "train a classifier" -- "$STRATA" train cls.yaml --out run
[ -s run/split.json ] || fail "no run/split.json"
[ "$(head -n 1 run/metrics.csv)" = "phase,epoch,step,loss,lr,rows,seconds,rows_per_s" ] ||
  fail "a classifier's metrics.csv header: $(head -n 1 run/metrics.csv)"
[ "$(wc -l <run/metrics.csv)" -eq 41 ] || fail "metrics.csv: expected 40 epochs' rows"
python3 -c 'import json,sys; s=json.load(open("run/split.json")); sys.exit(not (len(s["train"])==45 and len(s["held_out"])==15 and not set(s["train"])&set(s["held_out"])))' ||
  fail "run/split.json does not hold the 45/15 split"
"$STRATA" evaluate run >"$OUT/eval.txt" 2>&1 || fail "evaluate failed: $(cat "$OUT/eval.txt")"
grep -qE '^held-out accuracy: 1\.0000 \(15/15\), mean loss ' "$OUT/eval.txt" ||
  fail "evaluate: expected all 15 held-out rows right, got: $(cat "$OUT/eval.txt")"
"$STRATA" evaluate run --dataset rows.csv >"$OUT/eval.txt" 2>&1 || fail "evaluate --dataset failed: $(cat "$OUT/eval.txt")"
grep -qE '^rows\.csv accuracy: [01]\.[0-9]{4} \([0-9]+/60\), mean loss ' "$OUT/eval.txt" ||
  fail "evaluate --dataset: expected an accuracy over the file's 60 rows, got: $(cat "$OUT/eval.txt")"

# --- bad inputs -------------------------------------------------------------------------
printf '1,2,0\n1,2\n' >ragged.csv
sed 's/data: rows.csv/data: ragged.csv/' cls.yaml >ragged.yaml
expect_error "ragged CSV row" \
  'ragged.yaml:2:36: task.data: ragged.csv:2: expected 3 fields (2 features, then the label), got 2' -- \
  "$STRATA" train ragged.yaml --out r1
printf '1,2,0\n1,2,5\n' >label.csv
sed 's/data: rows.csv/data: label.csv/' cls.yaml >label.yaml
expect_error "label out of range" \
  'label.csv:2: label 5 is not a class: expected a whole number in [0, 3) (task.classes)' -- \
  "$STRATA" check label.yaml
expect_error "generate on a classifier" 'run: a classification run: generate and chat need a language model' -- \
  "$STRATA" generate run --prompt hi
expect_ok "gradcheck on a classifier" -- "$STRATA" gradcheck cls.yaml
grep -qE '^cls\.yaml: 99 parameters in 4 tensors, 3 classes; double precision' "$OUT/stdout.txt" &&
  grep -q '^OK: every parameter' "$OUT/stdout.txt" || fail "gradcheck on a classifier: $(cat "$OUT/stdout.txt")"
expect_error "--data on a classifier" "--data train=...: a classification run's data is task.data, not a phase's" -- \
  "$STRATA" check cls.yaml --data train=x.csv

finish
