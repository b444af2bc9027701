#!/usr/bin/env bash
# Corpora and SentencePiece through the command line: `strata tokenizer` writes a model a
# config then names; training on a corpus read through a pipe; a single 1 MB line; the
# token cache reused by a second run; generate from the run directory alone; the
# errors for a missing model file and corpus keys without format: corpus.
# Usage: corpus.sh path/to/strata
source "$(dirname "$0")/lib.sh" "$1"

# Fortune-style records, with non-ASCII text.
for i in $(seq 1 60); do
  printf 'Fortune number %d: the caf\xc3\xa9 opens at %d, don'"'"'t be late.\n%%\n' "$i" "$((i % 12))"
done >fortunes.txt

model_yaml() {  # $1: the tokenizer line, $2: data, $3: extra phase keys
  cat <<YAML
seed: 4
model:
  max_seq_len: 32
  layers:
    - {type: Embedding, dim: 16}
    - {type: TransformerBlock, dim: 16, hidden: 32, heads: 2, norm: pre}
    - {type: OutputProjection}
optimizer: {type: Adam, lr: 3.0e-3}
$1
training:
  phases:
    - {name: pre, data: $2, format: corpus, document: record, epochs: 1, batch: 4, shuffle: true$3}
generation: {max_tokens: 8}
YAML
}

model_yaml "tokenizer: {type: sentencepiece, vocab_size: 320}" fortunes.txt "" >train.yaml
expect_ok "tokenizer writes a model" -- "$STRATA" tokenizer train.yaml --out fortunes.model
grep -qF "fortunes.model: sentencepiece tokenizer, 320 tokens" "$OUT/stdout.txt" ||
  fail "strata tokenizer does not report the model"

model_yaml "tokenizer: {type: sentencepiece, model: fortunes.model}" - "" >piped.yaml
CASES=$((CASES + 1))
if ! cat fortunes.txt | "$STRATA" train piped.yaml --out piped >"$OUT/piped.txt" 2>&1; then
  fail "training on a corpus through a pipe: $(tail -3 "$OUT/piped.txt")"
fi
[ -f piped/cache/pre.tokens ] || fail "no token file in piped/cache"
expect_ok "generate from the run directory" -- "$STRATA" generate piped --prompt "Fortune"

# The same data from a file: same tokenizer, same bytes, so the same tokens.
model_yaml "tokenizer: {type: sentencepiece, model: fortunes.model}" fortunes.txt "" >file.yaml
expect_ok "train from the file" -- "$STRATA" train file.yaml --out fromfile
cmp -s piped/cache/pre.tokens fromfile/cache/pre.tokens || fail "pipe and file gave other tokens"

# One line of 1 MB (no newline at all), a few windows of it.
yes 'the quick brown fox jumps over the lazy dog, caf\xc3\xa9' | tr '\n' ' ' | head -c 1048576 >long.txt
model_yaml "tokenizer: {type: sentencepiece, vocab_size: 400}" long.txt ", stride: 200000" |
  sed 's/document: record/document: file/' >long.yaml
expect_ok "a single 1 MB line trains" -- "$STRATA" train long.yaml --out long

model_yaml "tokenizer: {type: sentencepiece, model: missing.model}" fortunes.txt "" >missing.yaml
expect_error "a missing model file" \
  "missing.yaml:9:41: tokenizer (sentencepiece): missing.model: no such file" -- \
  "$STRATA" train missing.yaml --out nothere
model_yaml "" fortunes.txt ", stride: 4" | sed "s/format: corpus, document: record, //" >nocorpus.yaml
expect_error "stride without format: corpus" \
  "\"stride\" is for format: corpus (the format is auto)" -- "$STRATA" check nocorpus.yaml

# Validation on a corpus phase. A held-out fraction: validation.csv gets rows, the
# trace lists the held-out windows once, and no trained batch uses one of them.
model_yaml "tokenizer: {type: sentencepiece, model: fortunes.model}" fortunes.txt \
  ", validation_fraction: 0.25" | sed 's/epochs: 1/epochs: 3/' >held.yaml
expect_ok "train with validation_fraction" -- "$STRATA" train held.yaml --out held --trace-batches held.trace
[ "$(tail -n +2 held/validation.csv | wc -l)" -eq 3 ] || fail "validation.csv: $(cat held/validation.csv)"
[ "$(grep -c '^pre validation ' held.trace)" -eq 1 ] || fail "the trace lists the held-out windows $(grep -c '^pre validation ' held.trace) times"
held=$(grep '^pre validation ' held.trace | cut -d' ' -f3- | tr ' ' '\n' | sort -u)
trained=$(grep -v '^pre validation ' held.trace | cut -d' ' -f3- | tr ' ' '\n' | sort -u)
[ -n "$held" ] && [ -n "$trained" ] || fail "no held-out or trained windows in the trace"
[ -z "$(comm -12 <(echo "$held") <(echo "$trained"))" ] || fail "held-out windows were trained on"
all=$(sort -u <(echo "$held") <(echo "$trained") | wc -l)
[ "$all" -eq "$(( $(echo "$held" | wc -l) + $(echo "$trained" | wc -l) ))" ] || fail "window count"

# The same windows are held out after a resume: killed mid-run and resumed, the run's
# validation.csv equals the uninterrupted run's.
model_yaml "tokenizer: {type: sentencepiece, model: fortunes.model}" fortunes.txt \
  ", validation_fraction: 0.25" | sed 's/epochs: 1/epochs: 60/; s/^training:/training:\n  checkpoint_every: 3/' >longheld.yaml
expect_ok "uninterrupted run with validation" -- "$STRATA" train longheld.yaml --out whole
"$STRATA" train longheld.yaml --out cut >"$OUT/cut.txt" 2>&1 &
pid=$!
for _ in $(seq 1 3000); do  # killed once it has validated (and saved) at least once
  [ -f cut/checkpoint/manifest.json ] && [ "$(cat cut/validation.csv 2>/dev/null | wc -l)" -ge 2 ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.01
done
kill -9 "$pid" 2>/dev/null || fail "the run with validation ended before it could be killed"
wait "$pid" 2>/dev/null
expect_ok "resume the run with validation" -- "$STRATA" train --resume cut
cmp -s whole/validation.csv cut/validation.csv ||
  fail "resumed validation.csv differs: $(diff whole/validation.csv cut/validation.csv | head -4)"

# A validation file, read like the phase's corpus.
head -n 20 fortunes.txt >valid.txt
model_yaml "tokenizer: {type: sentencepiece, model: fortunes.model}" fortunes.txt \
  ", validation: valid.txt" >vfile.yaml
expect_ok "train with a validation file" -- "$STRATA" train vfile.yaml --out vfile --trace-batches vfile.trace
[ "$(tail -n +2 vfile/validation.csv | wc -l)" -eq 1 ] || fail "validation.csv: $(cat vfile/validation.csv)"
[ -f vfile/cache/pre.validation.tokens ] || fail "no token file for the validation file"
grep -q '^pre validation 0' vfile.trace || fail "trace lacks the validation file's windows"

printf 'one short record\n%%\n' >tiny.txt
model_yaml "tokenizer: {type: sentencepiece, model: fortunes.model}" tiny.txt \
  ", validation_fraction: 0.5" >tiny.yaml
expect_error "too few windows to hold out" \
  "tiny.yaml:12:25: training.phases \"pre\": 1 window(s): too few to hold out 1 and train on the rest" -- \
  "$STRATA" train tiny.yaml --out tinyrun

# evaluate with no --data on a run whose last phase is a corpus directory: its
# documents (every record of both files), loss and perplexity = exp(loss).
mkdir fortdir
head -n 40 fortunes.txt >fortdir/a
tail -n +41 fortunes.txt >fortdir/b
printf 'binary\0index' >fortdir/a.dat
model_yaml "tokenizer: {type: sentencepiece, model: fortunes.model}" fortdir "" >dir.yaml
expect_ok "train on a corpus directory" -- "$STRATA" train dir.yaml --out dirrun
expect_ok "evaluate a corpus run without --data" -- "$STRATA" evaluate dirrun
line=$(grep -E '^fortdir: mean loss' "$OUT/stdout.txt")
[[ "$line" =~ ^fortdir:\ mean\ loss\ ([0-9.]+)\ per\ token\ over\ ([0-9]+)\ predicted\ tokens\ \(60\ documents\),\ perplexity\ ([0-9.]+)$ ]] ||
  fail "evaluate of a corpus run said: $(cat "$OUT/stdout.txt")"
awk -v l="${BASH_REMATCH[1]}" -v p="${BASH_REMATCH[3]}" 'BEGIN { e = exp(l); exit !(l > 0 && (p - e) ^ 2 <= (1e-3 * e) ^ 2) }' ||
  fail "perplexity is not exp(mean loss): $line"
printf 'the caf\xc3\xa9 opens at noon\nFortune number 3\n' >plain.txt
expect_ok "evaluate a corpus run on a text file" -- "$STRATA" evaluate dirrun --data plain.txt
grep -qE '^plain.txt: mean loss [0-9.]+ per token over [0-9]+ predicted tokens \([0-9]+ texts\), perplexity [0-9.]+$' "$OUT/stdout.txt" ||
  fail "evaluate --data plain.txt said: $(cat "$OUT/stdout.txt")"

mv fortdir fortdir.moved
expect_error "evaluate a corpus run whose data moved" "fortdir: no such file or directory" -- \
  "$STRATA" evaluate dirrun
mv fortdir.moved fortdir

finish
