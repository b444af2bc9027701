#!/usr/bin/env bash
# Hostile input: configs and data built to crash, hang or exhaust the `strata` binary
# (alias cycles and bombs, NUL bytes, deep nesting, endless files, pipes, invalid
# UTF-8, models past a ulimit) each end in one clear error within a second, under a
# 2 GB address-space limit, and data read from a pipe or /dev/stdin trains.
# Usage: hostile_input.sh path/to/strata
source "$(dirname "$0")/lib.sh" "$1"

write_tiny_run
echo "| case | message |"
echo "|---|---|"

# Runs COMMAND under `ulimit -v` (not under AddressSanitizer, whose shadow memory needs
# the address space) and a 5 s timeout, and fails the case if it took a second or more.
bounded() {
  local start end
  start=$(date +%s%N)
  (if [ -z "${STRATA_SANITIZED:-}" ]; then ulimit -v 2000000; fi; exec timeout 5 "$@")
  local rc=$?
  end=$(date +%s%N)
  if [ -z "${STRATA_SANITIZED:-}" ] && [ $(((end - start) / 1000000)) -ge 1000 ]; then
    echo "took $(((end - start) / 1000000)) ms: $*" >&2
    return 3
  fi
  return $rc
}

# --- YAML ---------------------------------------------------------------------------
printf 'a: &a [*a]\n' >cycle.yaml
expect_error "alias cycle" 'cycle.yaml:1:8: alias *a refers to a node that contains it (a cycle)' -- \
  bounded "$STRATA" check cycle.yaml
{
  echo 'a: &a [x, x, x, x, x, x, x, x, x]'
  previous=a
  for level in b c d e f g h i; do
    echo "$level: &$level [*$previous, *$previous, *$previous, *$previous, *$previous, *$previous, *$previous, *$previous, *$previous]"
    previous=$level
  done
} >bomb.yaml
expect_error "alias bomb (billion laughs)" 'bomb.yaml:6:8: aliases expand the config past 100000 values' -- \
  bounded "$STRATA" check bomb.yaml
printf 'seed: 1\nmodel: {a\0: 1}\n' >nul.yaml
expect_error "NUL byte" 'nul.yaml:2:10: NUL byte (\0) in the config' -- bounded "$STRATA" check nul.yaml
{ printf 'a: '; head -c 100000 /dev/zero | tr '\0' '['; } >deep.yaml
expect_error "100000 [ (flow nesting)" 'deep.yaml:1:' -- bounded "$STRATA" check deep.yaml
expect_error "100000 [ (message)" 'nested deeper than 64 levels' -- bounded "$STRATA" check deep.yaml
for i in $(seq 0 2999); do printf "%${i}sk:\n" ''; done >deep_block.yaml
expect_error "3000 indented levels (block nesting)" 'deep_block.yaml:65:65: nested deeper than 64 levels' -- \
  bounded "$STRATA" check deep_block.yaml
expect_error "config /dev/zero" '/dev/zero:1:16777217: config file larger than 16 MiB (16777216 bytes)' -- \
  bounded "$STRATA" check /dev/zero
expect_error "config from an endless pipe" 'config file larger than 16 MiB' -- \
  bounded bash -c "yes 'a: 1' | \"\$0\" check /dev/stdin" "$STRATA"
expect_error "endless config (train)" 'config file larger than 16 MiB' -- bounded "$STRATA" train /dev/zero --out run

# --- data ---------------------------------------------------------------------------
sed 's/data: data.json/data: data.txt/' tiny.yaml >text.yaml
printf 'the cat sat on the mat </s>\na dog ran in the park </s>\n' >data.txt
expect_ok "data from /dev/stdin (a pipe)" -- bash -c 'cat data.txt | "$0" train text.yaml --data p=/dev/stdin --out stdin_run' "$STRATA"
expect_ok "data from a pipe" -- bash -c '"$0" train text.yaml --data p=<(cat data.txt) --out pipe_run' "$STRATA"
if ! grep -q '^p,3,' pipe_run/metrics.csv 2>/dev/null; then
  fail "data from a pipe: no third epoch in metrics.csv"
fi
if ! cmp -s stdin_run/checkpoint/vocab.txt pipe_run/checkpoint/vocab.txt; then
  fail "data from /dev/stdin and from a pipe: different vocabularies"
fi
printf 'the cat sat </s>\nthe caf\xe9 </s>\n' >latin1.txt
expect_error "invalid UTF-8 in a data file" 'latin1.txt:2:8: invalid UTF-8 (byte 0xe9)' -- \
  "$STRATA" check text.yaml --data p=latin1.txt
expect_error "invalid UTF-8 from /dev/stdin" '/dev/stdin:2:8: invalid UTF-8' -- \
  bash -c '"$0" check text.yaml --data p=/dev/stdin <latin1.txt' "$STRATA"
expect_error "data /dev/zero" '/dev/zero: larger than 256 MiB (268435456 bytes)' -- \
  timeout 20 "$STRATA" check text.yaml --data p=/dev/zero

# --- what check refuses -------------------------------------------------------------
sed 's/- {type: OutputProjection}/- {type: Linear, out: 7}/' tiny.yaml >width.yaml
expect_error "last layer narrower than the vocabulary" 'the last layer must output one score per vocabulary token' -- \
  "$STRATA" check width.yaml
expect_error "last layer width (train)" 'has 7 features, the vocabulary has' -- "$STRATA" train width.yaml --out run
sed 's/clip_norm: 5.0/clip_norm: 5.0, eps: 0/' tiny.yaml >adam_eps.yaml
expect_error "Adam eps: 0" 'adam_eps.yaml:8:56: optimizer (Adam): "eps" must be > 0, got 0' -- \
  "$STRATA" check adam_eps.yaml
sed 's/hidden: 16}/hidden: 16, eps: 0}/' tiny.yaml >block_eps.yaml
expect_error "TransformerBlock eps: 0" '"eps" must be in (0, 1], got 0' -- "$STRATA" check block_eps.yaml
sed 's/name: p,/name: "p,q",/' tiny.yaml >comma.yaml
expect_error "comma in a phase name" "phase name \"p,q\" may only use letters, digits, '_', '.' and '-'" -- \
  "$STRATA" check comma.yaml
cat >wide_embedding.yaml <<'EOF'
model:
  max_seq_len: 16
  vocab_size: 50000
  layers:
    - {type: Embedding, dim: 4000}
    - {type: OutputProjection}
optimizer: {type: Adam}
EOF
if [ -z "${STRATA_SANITIZED:-}" ]; then
  # 200 million parameters fit this machine's memory but not a 2 GB address space.
  expect_error "model past ulimit -v" 'over the memory budget of' -- bounded "$STRATA" check wide_embedding.yaml
  expect_error "model past ulimit -v (names it)" '(the address-space limit, ulimit -v)' -- \
    bounded "$STRATA" check wide_embedding.yaml
  # A budget above the limit: the failed allocation names the layer and its size.
  expect_error "out of memory names the layer" 'out of memory building layer embedding (Embedding), which needs 200,064,000 parameters (1.6 GB with their gradients)' -- \
    env STRATA_MEMORY_BUDGET=100G bash -c 'ulimit -v 1000000; exec "$0" check wide_embedding.yaml' "$STRATA"
  # Each layer fits a 20 GB budget, the two together do not: refused from the configs
  # alone, before the 700-million-parameter Embedding is built (before, `check` built it,
  # which under `bounded`'s 2 GB limit fails and without one took minutes and gigabytes).
  cat >total_over_budget.yaml <<'EOF_TOTAL'
model:
  max_seq_len: 16
  vocab_size: 50000
  layers:
    - {type: Embedding, dim: 14000}
    - {type: Linear, out: 65536}
optimizer: {type: Adam}
EOF_TOTAL
  STRATA_MEMORY_BUDGET=20G expect_error "model over its budget in total" 'total_over_budget.yaml:6:7: model.layers[1] (Linear "linear"): model too large: layer linear has 917,569,536 parameters, bringing the model to 1,617,793,536 (25.9 GB to train), over the memory budget of 20.0 GB (STRATA_MEMORY_BUDGET)' -- \
    bounded "$STRATA" check total_over_budget.yaml
  # Parameters that fit, logits that do not (4 x 7 positions x 16 million scores).
  cat >logits.yaml <<'EOF_LOGITS'
seed: 3
model:
  max_seq_len: 16
  vocab_size: 16000000
  layers:
    - {type: Embedding, dim: 1}
    - {type: OutputProjection}
optimizer: {type: SGD, lr: 0.01}
training:
  phases:
    - {name: p, data: long.txt, epochs: 1, batch: 4}
EOF_LOGITS
  for i in 1 2 3 4; do echo 'the cat sat on the mat today </s>'; done >long.txt
  expect_error "out of memory in forward names the layer" 'out of memory in the forward pass of 28 positions (input (4, 7)); the largest output, layer output_projection (OutputProjection) (*, *, 16000000), takes 1.8 GB per copy' -- \
    bash -c 'ulimit -v 1300000; exec timeout 60 "$0" train logits.yaml --out big_logits' "$STRATA"
fi

# --- prompts ------------------------------------------------------------------------
printf 'generation: {prompts: ["the cat", "zebra wombat"]}\n' | cat tiny.yaml - >prompts.yaml
CASES=$((CASES + 1))
if ! "$STRATA" check prompts.yaml >/dev/null 2>"$OUT/stderr.txt"; then
  fail "check with an unanswerable prompt: not OK: $(cat "$OUT/stderr.txt")"
elif ! grep -qF 'strata: warning: prompts.yaml: generation.prompts[1] "zebra wombat": none of its words is in the vocabulary (zebra, wombat)' "$OUT/stderr.txt" ||
  grep -qF 'prompts[0]' "$OUT/stderr.txt"; then
  fail "check with an unanswerable prompt: warning missing or wrong: $(cat "$OUT/stderr.txt")"
else
  printf '| %-34s | %s |\n' "unanswerable prompt (warning)" "$(cat "$OUT/stderr.txt")"
fi

finish
