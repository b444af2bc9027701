#!/usr/bin/env bash
# Every bad input the `strata` command line can meet gives exit status 1, one clear
# message, and leaves no file behind: configs, sizes, data, prompts, checkpoints.
# Usage: bad_inputs.sh path/to/strata
source "$(dirname "$0")/lib.sh" "$1"

write_tiny_run
# A config differing from tiny.yaml by one sed expression.
variant() { sed "$1" tiny.yaml >"$2"; }

echo "| case | message |"
echo "|---|---|"

# --- configs ------------------------------------------------------------------------
printf 'model: {max_seq_len: 16\n  layers: [\n' >malformed.yaml
expect_error "malformed YAML" 'malformed.yaml:2:9: malformed YAML' -- "$STRATA" check malformed.yaml
expect_error "malformed YAML (train)" 'malformed YAML' -- "$STRATA" train malformed.yaml --out run
printf 'model: {max_seq_len: "16}\n' >unterminated.yaml
expect_error "unterminated quote" 'malformed YAML' -- "$STRATA" check unterminated.yaml
: >empty.yaml
expect_error "empty config" 'expected a mapping' -- "$STRATA" check empty.yaml
printf -- '- a\n- b\n' >list.yaml
expect_error "config is a list" 'expected a mapping' -- "$STRATA" check list.yaml
expect_error "missing config file" 'nope.yaml: cannot read' -- "$STRATA" check nope.yaml
mkdir -p adir
expect_error "config is a directory" 'adir: is a directory, not a config file' -- "$STRATA" check adir
head -c 300 "$STRATA" >binary.yaml
expect_error "binary garbage as config" 'binary.yaml' -- "$STRATA" check binary.yaml
variant 's/dim: 8}/dim: eight}/' wrongtype.yaml
expect_error "wrong type (dim: eight)" '"dim" must be an integer, got "eight"' -- "$STRATA" check wrongtype.yaml
variant 's/batch: 1}/batch: [1]}/' wrongtype2.yaml
expect_error "wrong type (batch: [1])" '"batch"' -- "$STRATA" check wrongtype2.yaml
variant 's/lr: 0.01/lr: fast/' wrongtype3.yaml
expect_error "wrong type (lr: fast)" '"lr"' -- "$STRATA" check wrongtype3.yaml
variant 's/dim: 8}/dmi: 8}/' typo.yaml
expect_error "unknown key" 'did you mean "dim"' -- "$STRATA" check typo.yaml
variant 's/type: Embedding/type: Embeding/' typo2.yaml
expect_error "unknown layer type" 'unknown layer type "Embeding" (did you mean "Embedding"' -- "$STRATA" check typo2.yaml
variant 's/hidden: 16/hidden: 16, dim: 8/' dup.yaml
expect_error "duplicate key" 'duplicate key "dim"' -- "$STRATA" check dup.yaml

# --- sizes --------------------------------------------------------------------------
variant 's/epochs: 3/epochs: -3/' neg_epochs.yaml
expect_error "negative epochs" '"epochs" must be in [1, 10000000], got -3' -- "$STRATA" check neg_epochs.yaml
variant 's/dim: 8}/dim: -8}/' neg_dim.yaml
expect_error "negative dim" '"dim" must be in [1, 65536], got -8' -- "$STRATA" check neg_dim.yaml
variant 's/max_seq_len: 16/max_seq_len: 0/' zero_len.yaml
expect_error "zero max_seq_len" '"max_seq_len" must be in [1, 1048576], got 0' -- "$STRATA" check zero_len.yaml
variant 's/batch: 1}/batch: 100000000000000000000}/' huge_batch.yaml
expect_error "batch 1e20" '"batch"' -- "$STRATA" check huge_batch.yaml
variant 's/hidden: 16/hidden: 16, heads: 3/' heads.yaml
expect_error "dim not divisible by heads" 'not divisible by heads 3' -- "$STRATA" check heads.yaml
# 60000-wide blocks, 100 of them: ~1.8e12 parameters. Refused by the budget before any
# allocation: under a 2 GB address-space limit an allocation would fail differently.
variant 's/dim: 8}/dim: 60000}/; s/dim: 8, hidden: 16/dim: 60000, hidden: 60000/; s/repeat: 1/repeat: 100/' absurd.yaml
limit_memory() { if [ -z "${STRATA_SANITIZED:-}" ]; then ulimit -v 2000000; fi; "$@"; }
expect_error "absurd sizes (dim 60000 x 100 blocks)" 'model too large: layer blocks.0 has 18,000,360,000 parameters' -- \
  limit_memory "$STRATA" check absurd.yaml
expect_error "absurd sizes (train)" 'model too large' -- limit_memory "$STRATA" train absurd.yaml --out run
variant 's/max_seq_len: 16/max_seq_len: 16\n  max_parameters: 500/' budget.yaml
expect_error "over model.max_parameters" 'over model.max_parameters (500)' -- "$STRATA" check budget.yaml
expect_error "over STRATA_MEMORY_BUDGET" 'STRATA_MEMORY_BUDGET' -- env STRATA_MEMORY_BUDGET=10K "$STRATA" check tiny.yaml
expect_error "malformed STRATA_MEMORY_BUDGET" 'STRATA_MEMORY_BUDGET="lots"' -- env STRATA_MEMORY_BUDGET=lots "$STRATA" check tiny.yaml

# --- data ---------------------------------------------------------------------------
variant 's/data.json/nope.json/' missing.yaml
expect_error "missing data file" 'training.phases "p": nope.json: no such file' -- "$STRATA" train missing.yaml --out run
variant 's/data.json/adir/' dirdata.yaml
expect_error "data path is a directory" 'adir: is a directory' -- "$STRATA" train dirdata.yaml --out run
if [ "$(id -u)" -ne 0 ]; then  # root reads anything
  cp data.json locked.json && chmod 000 locked.json
  variant 's/data.json/locked.json/' locked.yaml
  expect_error "unreadable data file" 'locked.json: cannot read' -- "$STRATA" train locked.yaml --out run
fi
echo '["a b", ' >bad.json
variant 's/data.json/bad.json/' badjson.yaml
expect_error "malformed JSON data" 'bad.json:2:1: malformed JSON' -- "$STRATA" train badjson.yaml --out run
echo '[]' >empty.json
variant 's/data.json/empty.json/' emptyjson.yaml
expect_error "empty dataset (JSON [])" 'empty.json: no examples' -- "$STRATA" train emptyjson.yaml --out run
printf '\n  \n\t\n' >blank.txt
variant 's/data.json/blank.txt/' blank.yaml
expect_error "empty dataset (blank lines)" 'blank.txt: no examples' -- "$STRATA" train blank.yaml --out run
echo '{"text": "a b"}' >object.json
variant 's/data.json/object.json/' object.yaml
expect_error "data is a JSON object" 'expected a JSON array of strings, found an object' -- "$STRATA" train object.yaml --out run
echo '["a b", 3]' >number.json
variant 's/data.json/number.json/' number.yaml
expect_error "data element not a string" 'element 1 is a number, expected a string' -- "$STRATA" train number.yaml --out run
echo '["hello", "world"]' >short.json
variant 's/data.json/short.json/' short.yaml
expect_error "no example with 2+ tokens" 'no example has two or more tokens' -- "$STRATA" train short.yaml --out run
echo "[\"$(echo w{1..40})\"]" >long.json
variant 's/data.json/long.json/' long.yaml
expect_error "example longer than max_seq_len" 'example 0 has 40 tokens, more than the 17 that fit' -- "$STRATA" train long.yaml --out run
expect_error "--data for an unknown phase" 'no phase named "pretrain"' -- "$STRATA" train tiny.yaml --data pretrain=data.json --out run
expect_error "--data without =" '--data expects PHASE=PATH' -- "$STRATA" train tiny.yaml --data data.json --out run
echo 'not a directory' >afile
expect_error "--out under a regular file" 'afile/run: cannot create directory' -- "$STRATA" train tiny.yaml --out afile/run

# --- a trained run for the prompt and checkpoint cases -------------------------------
expect_ok "train the tiny run" -- "$STRATA" train tiny.yaml --out run
variant 's/dim: 8}/dim: 12}/; s/dim: 8, hidden: 16/dim: 12, hidden: 16/' wide.yaml
expect_ok "train a wider run" -- "$STRATA" train wide.yaml --out wide
expect_error "train onto an existing checkpoint" 'run already holds a checkpoint: pass --resume run' -- \
  "$STRATA" train tiny.yaml --out run

# --- prompts ------------------------------------------------------------------------
expect_error "empty prompt" 'the prompt is empty' -- "$STRATA" generate run --prompt ""
expect_error "whitespace prompt" 'the prompt is empty' -- "$STRATA" generate run --prompt "  	 "
expect_error "prompt of unknown words only" "none of the prompt's words are in the model's vocabulary: zebra, xylophone" -- \
  "$STRATA" generate run --prompt "zebra xylophone"
expect_error "prompt longer than max_seq_len" 'the prompt has 20 tokens; the model'"'"'s maximum sequence length is 16' -- \
  "$STRATA" generate run --prompt "$(printf 'the %.0s' {1..20})"
EXPECT_RC=2 expect_error "negative --max-tokens (usage: exit 2)" '--max-tokens: must be an integer in [1, 1048576], got -5' -- \
  "$STRATA" generate run --prompt "the cat" --max-tokens -5
EXPECT_RC=2 expect_error "unknown subcommand (usage: exit 2)" 'unknown command "frobnicate"; commands: check,' -- "$STRATA" frobnicate

# --- checkpoints --------------------------------------------------------------------
expect_error "no checkpoint in the directory" 'adir: no checkpoint here' -- "$STRATA" generate adir --prompt "the cat"
expect_error "resume a missing run" 'nowhere: no checkpoint here' -- "$STRATA" train --resume nowhere

broken() {  # a fresh copy of the good run to damage
  rm -rf broken && cp -a run broken
}
broken && head -c 1000 run/checkpoint/model.npz >broken/checkpoint/model.npz
expect_error "truncated model.npz" 'broken/checkpoint/model.npz: 1000 bytes, the manifest says' -- \
  "$STRATA" generate broken --prompt "the cat"
broken && printf '\x7f' | dd of=broken/checkpoint/model.npz bs=1 seek=300 conv=notrunc status=none
expect_error "corrupted byte in model.npz" 'model.npz: checksum does not match the manifest (corrupted)' -- \
  "$STRATA" generate broken --prompt "the cat"
broken && printf 'x' | dd of=broken/checkpoint/optimizer.npz bs=1 seek=200 conv=notrunc status=none
expect_error "corrupted optimizer.npz on resume" 'optimizer.npz: checksum does not match' -- \
  "$STRATA" train --resume broken
broken && head -c 100 run/checkpoint/manifest.json >broken/checkpoint/manifest.json
expect_error "truncated manifest" 'manifest.json: corrupt manifest' -- "$STRATA" generate broken --prompt "the cat"
broken && rm broken/checkpoint/manifest.json
expect_error "missing manifest" 'manifest.json: cannot read' -- "$STRATA" generate broken --prompt "the cat"
broken && rm broken/checkpoint/vocab.txt
expect_error "missing vocab.txt" 'vocab.txt: cannot read' -- "$STRATA" generate broken --prompt "the cat"
broken && echo 'seed: 3' >broken/checkpoint/config.yaml
expect_error "replaced config.yaml" 'config.yaml: ' -- "$STRATA" generate broken --prompt "the cat"
# A checksum-valid checkpoint whose weights come from another architecture (the wider
# run's model.npz, its manifest entry updated to match).
broken && cp wide/checkpoint/model.npz broken/checkpoint/model.npz && reseal broken/checkpoint model.npz
expect_error "checkpoint from a different architecture" 'has shape (23, 12), the model needs (23, 8) (checkpoint from a different architecture)' -- \
  "$STRATA" generate broken --prompt "the cat"
broken && cp wide/checkpoint/optimizer.npz broken/checkpoint/optimizer.npz && reseal broken/checkpoint optimizer.npz
expect_error "optimizer state from another architecture" '(checkpoint from a different architecture)' -- \
  "$STRATA" train --resume broken
broken && perl -0pi -e 's/"next_batch": \d+/"next_batch": 99/' broken/checkpoint/manifest.json
expect_error "position that does not fit the config" 'does not fit its config' -- "$STRATA" train --resume broken
broken && perl -0pi -e 's/"step": \d+/"step": -4/' broken/checkpoint/manifest.json
expect_error "negative step in the manifest" 'position.step must be an integer in [0, 9223372036854775807], got -4' -- \
  "$STRATA" generate broken --prompt "the cat"
broken && perl -0pi -e 's/"format": "[^"]*"/"format": "other"/' broken/checkpoint/manifest.json
expect_error "foreign manifest format" 'not a strata-checkpoint-1 manifest' -- "$STRATA" generate broken --prompt "the cat"
# An interrupted save leaves only a temporary directory next to (or instead of) the
# checkpoint, never a torn checkpoint: a run whose very first save was cut short has none.
rm -rf broken && mkdir -p broken/checkpoint.tmp-999999 && head -c 500 run/checkpoint/model.npz >broken/checkpoint.tmp-999999/model.npz
expect_error "interrupted first save" 'broken: no checkpoint here' -- "$STRATA" generate broken --prompt "the cat"
# A save interrupted after the first one: the good checkpoint is used, and the next
# save removes the dead process's temporary directory (it carries Strata's marker).
rm -rf broken && cp -a run broken && mkdir broken/checkpoint.tmp-999999 &&
  touch broken/checkpoint.tmp-999999/.strata-checkpoint &&
  head -c 500 run/checkpoint/model.npz >broken/checkpoint.tmp-999999/model.npz
expect_ok "generate beside an interrupted save" -- "$STRATA" generate broken --prompt "the cat"
expect_ok "resume beside an interrupted save" -- "$STRATA" train --resume broken
[ ! -e broken/checkpoint.tmp-999999 ] || fail "the interrupted save's temporary directory was left"
rm -rf broken

finish
