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

finish
