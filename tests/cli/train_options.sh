#!/usr/bin/env bash
# train's options and measurements end to end: --set (applied, saved with the run, and
# its errors naming the override), --init-from (weights of another run, mismatches
# named), validation.csv / steps.csv / DIR/best, and samples during training.
# Usage: train_options.sh path/to/strata
source "$(dirname "$0")/lib.sh" "$1"

cat >data.json <<'JSON'
["the cat sat on the mat </s>", "a dog ran in the park </s>", "birds sing at dawn </s>",
 "rain falls from grey clouds </s>", "the dog sat in the rain </s>", "a cat ran from the park </s>"]
JSON
cat >lm.yaml <<'YAML'
seed: 5
model:
  max_seq_len: 16
  layers:
    - {type: Embedding, dim: 8}
    - {type: TransformerBlock, name: blocks, repeat: 1, dim: 8, hidden: 16, heads: 2}
    - {type: OutputProjection}
optimizer: {type: Adam, lr: 0.01}
training:
  eval_every: 4
  phases:
    - {name: p, data: data.json, epochs: 2, batch: 2, validation_fraction: 0.34}
generation:
  max_tokens: 4
  every: 3
  prompts: ["the cat"]
YAML

# --- --set -------------------------------------------------------------------------------
expect_ok "--set epochs and seed" -- "$STRATA" train lm.yaml --out set_run \
  --set training.phases.0.epochs=3 --set seed=9
grep -q '^model: .*, seed 9,' "$OUT/stdout.txt" || fail "--set seed=9 not applied: $(head -1 "$OUT/stdout.txt")"
[ "$(grep -c '^\[p\] epoch' "$OUT/stdout.txt")" -eq 3 ] || fail "--set training.phases.0.epochs=3: not 3 epochs"
grep -q 'epochs: 3' set_run/checkpoint/config.yaml || fail "the run's config.yaml lacks the override"
expect_ok "--set a whole layer" -- "$STRATA" train lm.yaml --out set_layer --set training.phases.0.epochs=1 \
  --set 'model.layers.1={type: TransformerBlock, name: blocks, dim: 8, hidden: 12, heads: 1}'
# The same model written in the file: the same parameter count.
sed 's/repeat: 1, dim: 8, hidden: 16, heads: 2/dim: 8, hidden: 12, heads: 1/' lm.yaml >layer.yaml
"$STRATA" check layer.yaml >"$OUT/check.txt" 2>&1
want=$(sed -n 's/^total parameters: \([0-9,]*\).*/\1/p' "$OUT/check.txt" | tr -d ,)
grep -q "^model: $want parameters," "$OUT/stdout.txt" ||
  fail "--set model.layers.1={...}: not the model of layer.yaml ($want parameters): $(head -1 "$OUT/stdout.txt")"
expect_error "--set unknown key" \
  '--set training.phases.0.epoch=3: training.phases[0]: unknown key "epoch" (did you mean "epochs"?)' -- \
  "$STRATA" train lm.yaml --out bad1 --set training.phases.0.epoch=3
expect_error "--set layer key" \
  '--set model.layers.1.heads=3: model.layers[1] (TransformerBlock "blocks"): dim 8 is not divisible by heads 3' -- \
  "$STRATA" train lm.yaml --out bad2 --set model.layers.1.heads=3
expect_error "--set out of range" '--set seed=-3: config: "seed" must be in [0, ' -- \
  "$STRATA" train lm.yaml --out bad3 --set seed=-3
expect_error "--set index" \
  '--set training.phases.4.epochs=2: training.phases is a list of 1 entries: expected an index from 0 to 0, got '"'4'" -- \
  "$STRATA" train lm.yaml --out bad4 --set training.phases.4.epochs=2
expect_error "--set path" '--set trainin.eval_every=2: the config has no key "trainin" (did you mean "training"?)' -- \
  "$STRATA" train lm.yaml --out bad5 --set trainin.eval_every=2
expect_error "--set without =" '--set seed: expected PATH=VALUE, e.g. training.phases.0.epochs=3' -- \
  "$STRATA" train lm.yaml --out bad6 --set seed

sed 's/validation_fraction: 0.34/validation: nope.json/' lm.yaml >nofile.yaml
expect_error "validation file missing" 'nofile.yaml:12:67: training.phases "p": validation: nope.json: no such file' -- \
  "$STRATA" train nofile.yaml --out bad7
expect_error "validation twice" \
  '--set training.phases.0.validation=data.json: training.phases[0]: give either validation (a file) or validation_fraction, not both' -- \
  "$STRATA" train lm.yaml --out bad8 --set training.phases.0.validation=data.json
expect_error "accumulate 0" '--set training.phases.0.accumulate=0: training.phases[0]: "accumulate" must be in [1, 65536], got 0' -- \
  "$STRATA" train lm.yaml --out bad9 --set training.phases.0.accumulate=0

# --- validation, steps.csv, best, samples -----------------------------------------------
# 6 sentences, 2 held out: 4 to train on, 2 steps per epoch; 2 epochs = 4 steps.
expect_ok "train with validation" -- "$STRATA" train lm.yaml --out run
[ "$(head -1 run/steps.csv)" = "step,phase,epoch,loss,learning_rate,grad_norm,tokens_per_second" ] ||
  fail "steps.csv header: $(head -1 run/steps.csv)"
[ "$(wc -l <run/steps.csv)" -eq 5 ] || fail "steps.csv: expected 4 rows"
[ "$(head -1 run/validation.csv)" = "step,phase,epoch,loss,perplexity" ] ||
  fail "validation.csv header: $(head -1 run/validation.csv)"
# The end of epoch 1 (step 2) and step 4 (eval_every, also the end of epoch 2).
[ "$(cut -d, -f1-3 run/validation.csv | tail -n +2 | tr '\n' ' ')" = "2,p,1 4,p,2 " ] ||
  fail "validation.csv rows: $(cat run/validation.csv)"
grep -qE '^\[p\] epoch 1/2  loss [0-9.]+  val loss [0-9.]+  perplexity [0-9.]+' "$OUT/stdout.txt" ||
  fail "the epoch line lacks the validation: $(cat "$OUT/stdout.txt")"
grep -qE '^\[sample, step 3\] the cat ->' "$OUT/stdout.txt" || fail "no sample at step 3: $(cat "$OUT/stdout.txt")"
[ -f run/best/checkpoint/manifest.json ] || fail "no run/best/checkpoint"
expect_ok "generate from the best checkpoint" -- "$STRATA" generate run/best --prompt "the cat" --max-tokens 3

# --- --init-from -------------------------------------------------------------------------
expect_ok "--init-from" -- "$STRATA" train lm.yaml --out init_run --init-from run --set training.phases.0.epochs=1
python3 - <<'PY' || fail "--init-from: the first loss is not below the fresh run's"
import csv
first = lambda d: float(next(csv.DictReader(open(d + "/steps.csv")))["loss"])
assert first("init_run") < first("run"), (first("init_run"), first("run"))
PY
expect_error "--init-from another shape" \
  '--init-from run: parameter "blocks.0.ffn.fc1.weight" has shape (8, 16), the model needs (8, 32)' -- \
  "$STRATA" train lm.yaml --out init_bad --init-from run --set model.layers.1.hidden=32
expect_error "--init-from nothing" 'nowhere: no checkpoint here' -- \
  "$STRATA" train lm.yaml --out init_bad --init-from nowhere
expect_ok "fork a run" -- "$STRATA" train --resume run --out forked
cmp -s run/steps.csv forked/steps.csv && cmp -s run/validation.csv forked/validation.csv ||
  fail "a fork does not carry steps.csv and validation.csv"
expect_error "--resume with --set" 'drop the CONFIG, --seed, --data, --set and --init-from arguments' -- \
  "$STRATA" train --resume run --set seed=3

# --- --stop-at-step and --save-initial -------------------------------------------------------
# A run stopped at step 3 and resumed ends where an uninterrupted one does; DIR/initial
# holds the parameters before the first step (different from the trained ones).
expect_ok "--stop-at-step 3 --save-initial" -- "$STRATA" train lm.yaml --out sliced --stop-at-step 3 --save-initial
grep -q '^stopped at step 3 (--stop-at-step)' "$OUT/stdout.txt" || fail "--stop-at-step: $(cat "$OUT/stdout.txt")"
[ -f sliced/initial/checkpoint/model.npz ] || fail "--save-initial wrote no sliced/initial/checkpoint"
[ "$(($(wc -l <sliced/steps.csv) - 1))" -eq 3 ] || fail "--stop-at-step 3: steps.csv has not 3 rows"
expect_ok "resume after --stop-at-step" -- "$STRATA" train --resume sliced
expect_ok "uninterrupted" -- "$STRATA" train lm.yaml --out whole
cmp -s sliced/checkpoint/model.npz whole/checkpoint/model.npz || fail "stopped at step 3 and resumed: other weights"
cmp -s sliced/initial/checkpoint/model.npz whole/checkpoint/model.npz && fail "initial weights equal the trained ones"
diff <(cut -d, -f1-6 sliced/steps.csv) <(cut -d, -f1-6 whole/steps.csv) >/dev/null || fail "steps.csv differ after the slice"
EXPECT_RC=2 expect_error "--stop-at-step 0" '--stop-at-step' -- "$STRATA" train lm.yaml --out never --stop-at-step 0

finish
