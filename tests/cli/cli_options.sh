#!/usr/bin/env bash
# The command line itself: numeric options checked like the config keys they override
# (same ranges, printed in plain digits), exit statuses that tell the truth (stdout that
# could not take the output, chat lines not answered, nothing to evaluate, gradcheck
# resolving nothing), and one meaning per option name on every command.
# Usage: cli_options.sh path/to/strata
source "$(dirname "$0")/lib.sh" "$1"

write_tiny_run
"$STRATA" train tiny.yaml --out run >/dev/null 2>&1 || fail "training the tiny run failed"

# expect_status NAME STATUS 'text on stderr' -- COMMAND...: for commands that may write
# files (a training) or whose status is not an error's 1 or 2.
expect_status() {
  local name=$1 expected_rc=$2 text=$3
  shift 4
  CASES=$((CASES + 1))
  "$@" >"$OUT/stdout.txt" 2>"$OUT/stderr.txt"
  local rc=$? message
  message=$(cat "$OUT/stderr.txt")
  if [ "$rc" -ne "$expected_rc" ]; then
    fail "$name: exit status $rc (expected $expected_rc); stderr: $message"
  elif ! grep -qF -- "$text" <<<"$message"; then
    fail "$name: stderr lacks \"$text\"; got: $message"
  else
    printf '| %-34s | %s |\n' "$name" "${message//$'\n'/ }"
  fi
}

echo "| case | message |"
echo "|---|---|"

# --- numeric options: the config's ranges, plain digits (usage errors: exit 2) -------
usage() { EXPECT_RC=2 expect_error "$@"; }
usage "--seed beyond the config's range" '--seed: must be an integer in [0, 9000000000000000], got 9000000000000001' -- \
  "$STRATA" train tiny.yaml --out new --seed 9000000000000001
usage "--seed 1e30" '--seed: must be an integer in [0, 9000000000000000], got 1e30' -- "$STRATA" train tiny.yaml --out new --seed 1e30
usage "--seed beyond int64" 'got 99999999999999999999' -- "$STRATA" train tiny.yaml --out new --seed 99999999999999999999
usage "--threads 0" '--threads: must be an integer in [1, 64], got 0' -- "$STRATA" train tiny.yaml --out new --threads 0
usage "--threads abc" '--threads: must be an integer in [1, 64], got abc' -- "$STRATA" train tiny.yaml --out new --threads abc
usage "--threads 1e9" '--threads: must be an integer in [1, 64], got 1e9' -- "$STRATA" train tiny.yaml --out new --threads 1e9
usage "--temperature nan" '--temperature: must be a finite number in [0, 100], got nan' -- \
  "$STRATA" generate run --prompt "the cat" --temperature nan
usage "--temperature inf" '--temperature: must be a finite number in [0, 100], got inf' -- \
  "$STRATA" generate run --prompt "the cat" --temperature inf
usage "--top-p nan" '--top-p: must be a finite number in [0, 1], got nan' -- "$STRATA" generate run --prompt "the cat" --top-p nan
usage "--top-p 1.5" '--top-p: must be a finite number in [0, 1], got 1.5' -- "$STRATA" chat run --top-p 1.5
usage "--top-k -3" '--top-k: must be an integer in [0, 16777216], got -3' -- "$STRATA" generate run --prompt "the cat" --top-k -3
usage "--max-tokens 0" '--max-tokens: must be an integer in [1, 1048576], got 0' -- "$STRATA" generate run --prompt "the cat" --max-tokens 0
usage "--max-tokens 2.5" '--max-tokens: must be an integer in [1, 1048576], got 2.5' -- "$STRATA" chat run --max-tokens 2.5
usage "sampling --seed -1" '--seed: must be an integer in [0, 9000000000000000], got -1' -- "$STRATA" chat run --seed -1
usage "generate --threads 0" '--threads: must be an integer in [1, 64], got 0' -- "$STRATA" generate run --prompt "the cat" --threads 0
usage "evaluate --threads 65" '--threads: must be an integer in [1, 64], got 65' -- "$STRATA" evaluate run --threads 65
usage "gradcheck --step 1e-300" '--step: must be a finite number in [1e-12, 0.1], got 1e-300' -- "$STRATA" gradcheck tiny.yaml --step 1e-300
usage "gradcheck --step nan" '--step: must be a finite number in [1e-12, 0.1], got nan' -- "$STRATA" gradcheck tiny.yaml --step nan
usage "gradcheck --step 1" '--step: must be a finite number in [1e-12, 0.1], got 1' -- "$STRATA" gradcheck tiny.yaml --step 1
usage "gradcheck --tolerance 0" '--tolerance: must be a finite number in [1e-15, 1], got 0' -- "$STRATA" gradcheck tiny.yaml --tolerance 0
usage "gradcheck --tolerance nan" '--tolerance: must be a finite number in [1e-15, 1], got nan' -- "$STRATA" gradcheck tiny.yaml --tolerance nan
usage "gradcheck --entries -1" '--entries: must be an integer in [0, 1000000000], got -1' -- "$STRATA" gradcheck tiny.yaml --entries -1
usage "gradcheck --entries 1.5" '--entries: must be an integer in [0, 1000000000], got 1.5' -- "$STRATA" gradcheck tiny.yaml --entries 1.5
usage "gradcheck --batch 0" '--batch: must be an integer in [1, 64], got 0' -- "$STRATA" gradcheck tiny.yaml --batch 0
usage "gradcheck --seed beyond range" '--seed: must be an integer in [0, 9000000000000000]' -- \
  "$STRATA" gradcheck tiny.yaml --seed 9000000000000001
# The file says the same range, in the same digits.
sed 's/^seed: 3/seed: 9000000000000001/' tiny.yaml >bigseed.yaml
expect_error "config seed beyond its range" '"seed" must be in [0, 9000000000000000], got 9000000000000001' -- \
  "$STRATA" check bigseed.yaml
# The ends of every range are accepted.
expect_ok "sampling options at their limits" -- "$STRATA" generate run --prompt "the cat" --temperature 100 \
  --top-p 0 --top-k 16777216 --max-tokens 1 --seed 9000000000000000 --threads 64
expect_ok "train --seed 9000000000000000" -- "$STRATA" train tiny.yaml --out maxseed --seed 9000000000000000 --threads 2
grep -q "seed 9000000000000000, threads 2" "$OUT/stdout.txt" || fail "train did not take --seed/--threads: $(cat "$OUT/stdout.txt")"

# --- exit statuses ------------------------------------------------------------------
to_full() { "$@" >/dev/full; }
expect_error "stdout is /dev/full" 'cannot write to standard output: No space left on device' -- to_full "$STRATA" layers
expect_error "generate to /dev/full" 'cannot write to standard output' -- to_full "$STRATA" generate run --prompt "the cat"
# A pipe whose reader is gone before Strata writes, with SIGPIPE as the caller left it
# (default: killed by the signal before; ignored: exit 0 before).
closed_pipe() { perl -e 'pipe(my $r, my $w) or die; close $r; open(STDOUT, ">&", $w) or die; exec @ARGV or die' -- "$@"; }
closed_pipe_ignored() {
  perl -e '$SIG{PIPE} = "IGNORE"; pipe(my $r, my $w) or die; close $r; open(STDOUT, ">&", $w) or die; exec @ARGV or die' -- "$@"
}
expect_error "stdout is a closed pipe" 'cannot write to standard output: Broken pipe' -- closed_pipe "$STRATA" layers
expect_error "closed pipe, SIGPIPE ignored" 'cannot write to standard output: Broken pipe' -- closed_pipe_ignored "$STRATA" layers
# A closed descriptor 1 is held with /dev/null, so no file Strata opens takes its place.
closed_stdout() { "$@" >&-; }
expect_error "stdout closed" 'cannot write to standard output: Bad file descriptor' -- closed_stdout "$STRATA" layers
expect_status "train with stdout closed" 1 'cannot write to standard output: Bad file descriptor' -- \
  closed_stdout "$STRATA" train tiny.yaml --out closed
[ -f closed/metrics.csv ] && ! grep -qv "^[a-z_]*," closed/metrics.csv || fail "train with stdout closed: metrics.csv missing or holds other lines"
expect_ok "generate from the run trained with stdout closed" -- "$STRATA" generate closed --prompt "the cat"
# A training whose output is lost still trains and saves, and says it failed.
expect_status "train with stdout /dev/full" 1 'cannot write to standard output' -- to_full "$STRATA" train tiny.yaml --out full
[ -f full/checkpoint/manifest.json ] || fail "train to /dev/full: no checkpoint saved"

# chat answers every line it can, and fails if one could not be answered.
long_line=$(printf 'the %.0s' {1..20})
printf 'where is the cat ?\n%s\nthe dog\n' "$long_line" >questions.txt
expect_status "chat with an unanswerable line" 1 'strata: error: chat: 1 of 3 lines could not be answered' -- \
  "$STRATA" chat run <questions.txt
[ "$(wc -l <"$OUT/stdout.txt")" -eq 3 ] || fail "chat: expected 3 answer lines, got: $(cat "$OUT/stdout.txt")"
sed -n 2p "$OUT/stdout.txt" | grep -qF "maximum sequence length" || fail "chat: line 2 does not say why: $(cat "$OUT/stdout.txt")"
printf 'where is the cat ?\nthe dog\n' >good_questions.txt
expect_ok "chat with answerable lines" -- "$STRATA" chat run <good_questions.txt

# Texts without questions are scored by their loss (tests/cli/evaluate_chat.sh); a file
# in which no text has a token to predict is an error.
echo '["the", "cat"]' >one_word_texts.json
expect_error "evaluate with nothing to predict" 'one_word_texts.json: nothing to evaluate: no text of at least 2 tokens' -- \
  "$STRATA" evaluate run --dataset one_word_texts.json

# A sample prompt of unknown words after a saved training: a warning, exit 0.
sed 's/^seed: 3/seed: 3\ngeneration: {prompts: [zebra, the cat]}/' tiny.yaml >prompts.yaml
expect_status "sample prompt with no known word" 0 \
  'strata: warning: generation.prompts: "zebra" not answered: none of the prompt'"'"'s words are in the model'"'"'s vocabulary: zebra' -- \
  "$STRATA" train prompts.yaml --out prompted
grep -q '^the cat -> ' "$OUT/stdout.txt" || fail "the other sample prompt was not answered: $(cat "$OUT/stdout.txt")"

# gradcheck fails when its step resolves no gradient (every tensor at the rounding floor).
expect_status "gradcheck resolving nothing" 1 '' -- "$STRATA" gradcheck tiny.yaml --step 1e-12
grep -qF "FAILED: the step 1.000e-12 cannot resolve the gradients" "$OUT/stdout.txt" ||
  fail "gradcheck --step 1e-12: $(tail -3 "$OUT/stdout.txt")"
expect_ok "gradcheck at the default step" -- "$STRATA" gradcheck tiny.yaml

# --- one meaning per option, on every command -------------------------------------
expect_ok "generate --threads 2" -- "$STRATA" generate run --prompt "the cat" --threads 2
cp "$OUT/stdout.txt" "$OUT/threads2.txt"
expect_ok "generate --threads 1" -- "$STRATA" generate run --prompt "the cat" --threads 1
cmp -s "$OUT/stdout.txt" "$OUT/threads2.txt" || fail "generate: --threads 2 answered differently"
expect_ok "chat --threads 2" -- "$STRATA" chat run --threads 2 <good_questions.txt
expect_ok "evaluate --threads 2 --dataset" -- "$STRATA" evaluate run --threads 2 --dataset data.json
grep -q "exact answers: [0-9]/1" "$OUT/stdout.txt" || fail "evaluate --dataset: $(cat "$OUT/stdout.txt")"
cp "$OUT/stdout.txt" "$OUT/evaluate_dataset.txt"
expect_ok "evaluate --data FILE" -- "$STRATA" evaluate run --threads 2 --data data.json
cmp -s "$OUT/stdout.txt" "$OUT/evaluate_dataset.txt" || fail "evaluate: --data and --dataset differ"
usage "mistyped command" 'unknown command "trian" (did you mean "train"?)' -- "$STRATA" trian tiny.yaml
usage "unknown command" 'unknown command "frobnicate"; commands: check, layers, train, generate, chat, evaluate, plot, gradcheck' -- \
  "$STRATA" frobnicate
usage "no command" 'a command is required: check, layers, train' -- "$STRATA"
usage "mistyped option" 'train: unknown option "--thread" (did you mean "--threads"?)' -- "$STRATA" train tiny.yaml --thread 2
usage "mistyped option with =" 'generate: unknown option "--temprature" (did you mean "--temperature"?)' -- \
  "$STRATA" generate run --prompt "the cat" --temprature=2

finish
