#!/usr/bin/env bash
# Data parallel over MPI gives the single-process training (issue 13):
#  - 2 ranks x 20 rows = 1 rank x 40 rows: the same loss at every one of 60 steps, within
#    the rounding of the sums that the split reorders (bound below), for a RustGPT-style
#    post-norm config and a GPT-2 style pre-norm one (tests/configs/mpi_*.yaml: one step
#    per epoch, so metrics.csv holds every step's loss);
#  - two identical 2-rank runs are bit-identical (metrics and checkpoint);
#  - 2 ranks x 2 threads are bit-identical to 2 ranks x 1 thread (the pool never changes
#    the arithmetic, framework/parallel.hpp);
#  - gradient accumulation (accumulate: 4 batches of 13, 13, 13, 1 rows a step): 2 ranks
#    add their first 3 batches' gradients locally and sum them with the 4th's, in which
#    rank 0 has no rows; the losses agree with 1 rank's with the same batch and accumulate;
#  - at batch 1 rank 1 has no rows in any step and adds zeros: exactly 1 rank's run;
#  - a corpus phase: each rank reads only its windows of each batch from the token file
#    (--trace-batches FILE: FILE.rank<r> lists the windows rank r read, rows
#    [r B / 2, (r + 1) B / 2) of each batch; FILE, rank 0's, is the single process's trace),
#    and its losses agree with 1 rank's.
# Usage: mpi_equivalence.sh path/to/strata MPIRUN [MPIRUN ARGS...]
source "$(dirname "$0")/mpi_lib.sh" "$@"

for config in mpi_rustgpt mpi_prenorm; do
  cp "$SRC/tests/configs/$config.yaml" .
  expect_ok "$config: 1 rank" -- "$STRATA" train "$config.yaml" --out "$config.1"
  expect_ok "$config: 2 ranks" -- "${MPIRUN[@]}" -np 2 "$STRATA" train "$config.yaml" --out "$config.2"
  grep -q "ranks 2" "$OUT/stdout.txt" || fail "$config: the 2-rank run did not say 'ranks 2'"
  expect_ok "$config: 2 ranks again" -- "${MPIRUN[@]}" -np 2 "$STRATA" train "$config.yaml" \
    --out "$config.2b"
  compare_losses "$config: 2 ranks vs 1 rank" "$config.1" "$config.2"
  for f in model.npz optimizer.npz manifest.json; do
    cmp -s "$config.2/checkpoint/$f" "$config.2b/checkpoint/$f" ||
      fail "$config: two 2-rank runs differ in $f"
  done
  diff <(losses "$config.2") <(losses "$config.2b") >/dev/null ||
    fail "$config: two 2-rank runs have different losses"
  cmp -s "$config.1/checkpoint/model.npz" "$config.2/checkpoint/model.npz" &&
    echo "$config: 2 ranks ended bit-identical to 1 rank"
done

sed 's/      batch: 40/      batch: 13\n      accumulate: 4/' mpi_prenorm.yaml >accumulate.yaml
expect_ok "accumulate: 1 rank" -- "$STRATA" train accumulate.yaml --out accumulate.1
expect_ok "accumulate: 2 ranks" -- "${MPIRUN[@]}" -np 2 "$STRATA" train accumulate.yaml \
  --out accumulate.2
compare_losses "accumulate 4: 2 ranks vs 1 rank" accumulate.1 accumulate.2

expect_ok "2 ranks x 2 threads" -- "${MPIRUN[@]}" -np 2 "$STRATA" train mpi_prenorm.yaml \
  --out threads.2 --threads 2
cmp -s mpi_prenorm.2/checkpoint/model.npz threads.2/checkpoint/model.npz ||
  fail "2 ranks x 2 threads differ from 2 ranks x 1 thread"

# Batch 1 (write_tiny_run: 4 sequences, 3 epochs): rank 0 holds every row, its share of the
# targets is 1 and the sum adds rank 1's zeros, so every bit is the single process's.
write_tiny_run
expect_ok "batch 1: 1 rank" -- "$STRATA" train tiny.yaml --out tiny.1
expect_ok "batch 1: 2 ranks" -- "${MPIRUN[@]}" -np 2 "$STRATA" train tiny.yaml --out tiny.2
for f in model.npz optimizer.npz; do
  cmp -s "tiny.1/checkpoint/$f" "tiny.2/checkpoint/$f" ||
    fail "batch 1: the 2-rank run's $f differs from 1 rank's"
done
diff <(cut -d, -f1-6 tiny.1/metrics.csv) <(cut -d, -f1-6 tiny.2/metrics.csv) >/dev/null ||
  fail "batch 1: the 2-rank metrics differ from 1 rank's"

# A corpus phase: 8 windows of 17 tokens, 2 held out for validation, the other 6 one global
# batch (one step per epoch), split 3 + 3 by 2 ranks.
words=(the cat sat on a mat and the dog ran to the red door of a small house)
for length in 30 22 34 36; do
  for i in $(seq 0 $((length - 1))); do printf '%s ' "${words[$(((length + 3 * i) % 17))]}"; done
  printf '\n\n'
done >corpus.txt
cat >corpus.yaml <<'EOF'
seed: 3
threads: 1
model:
  max_seq_len: 16
  layers:
    - {type: Embedding, dim: 16}
    - {type: TransformerBlock, dim: 16, hidden: 32, heads: 2, norm: pre}
    - {type: OutputProjection}
optimizer: {type: AdamW, lr: 3.0e-3, clip_norm: 1.0}
training:
  phases:
    - {name: pre, data: corpus.txt, format: corpus, document: paragraph, epochs: 60, batch: 7,
       shuffle: true, validation_fraction: 0.25}
EOF
expect_ok "corpus: 1 rank" -- "$STRATA" train corpus.yaml --out corpus.1 --trace-batches one.trace
expect_ok "corpus: 2 ranks" -- "${MPIRUN[@]}" -np 2 "$STRATA" train corpus.yaml --out corpus.2 \
  --trace-batches two.trace
compare_losses "corpus: 2 ranks vs 1 rank" corpus.1 corpus.2
[ "$(grep -c '^pre 0 ' one.trace)" -eq 60 ] || fail "corpus: not one batch per epoch"
[ "$(grep -c '^pre validation ' one.trace)" -eq 1 ] || fail "corpus: no validation line"
ls one.trace.rank* >/dev/null 2>&1 && fail "corpus: a single process wrote a per-rank trace"
cmp -s one.trace two.trace || fail "corpus: the 2-rank run's trace (rank 0's) is not 1 rank's"
# Batch line k of FILE cut at row floor(B r / 2): rank r's line k.
for r in 0 1; do
  awk -v r=$r '$2 != "validation" { n = NF - 2; from = int(r * n / 2); to = int((r + 1) * n / 2)
                 line = $1 " " $2; for (i = from; i < to; ++i) line = line " " $(i + 3); print line }' \
    two.trace >expected.rank$r
  cmp -s expected.rank$r two.trace.rank$r ||
    fail "corpus: rank $r did not read exactly its rows' windows: $(diff expected.rank$r two.trace.rank$r | head -4)"
done
finish
