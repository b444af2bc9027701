#!/usr/bin/env bash
# A trained language model as a user meets it: evaluate's loss and perplexity on any
# text (long lines included) beside its exact-answer count; generate and chat agreeing on
# the `User:` prefix; chat keeping the conversation within the context (oldest turns
# dropped, said once), /reset; --repetition-penalty checked like the other options.
# Usage: evaluate_chat.sh path/to/strata
source "$(dirname "$0")/lib.sh" "$1"

cat >data.json <<'EOF'
["the cat sat on the mat </s>", "a dog ran in the park </s>",
 "User: where is the cat ? Assistant: on the mat </s>", "birds sing at dawn </s>"]
EOF
cat >chat.yaml <<'EOF'
seed: 5
model:
  max_seq_len: 40
  layers:
    - {type: Embedding, dim: 16}
    - {type: TransformerBlock, name: blocks, repeat: 1, dim: 16, hidden: 32}
    - {type: OutputProjection}
optimizer: {type: Adam, lr: 0.01}
training:
  phases:
    - {name: p, data: data.json, epochs: 30, batch: 1}
EOF
"$STRATA" train chat.yaml --out run >"$OUT/train.txt" 2>&1 || fail "training failed: $(cat "$OUT/train.txt")"

echo "| case | message |"
echo "|---|---|"

# --- evaluate: loss and perplexity, then the exact answers ------------------------------
# mean loss X per token over N predicted tokens (T texts), perplexity P: P = exp(X) to
# the printed digits (both to 4 decimals: X's rounding is 5e-5 relative on P).
check_loss_line() {
  local name=$1 tokens=$2 texts=$3 file=$4
  CASES=$((CASES + 1))
  grep -qE "^$file: mean loss [0-9.]+ per token over $tokens predicted tokens \($texts texts\), perplexity [0-9.]+$" \
    "$OUT/stdout.txt" || { fail "$name: $(cat "$OUT/stdout.txt")"; return; }
  awk '/mean loss/ { x = $4; p = $NF; e = exp(x); d = p - e; if (d < 0) d = -d
                     print "  perplexity", p, "exp(loss)", e; exit !(d <= e * 6e-5 + 6e-5) }' \
    "$OUT/stdout.txt" || fail "$name: perplexity is not exp(mean loss): $(cat "$OUT/stdout.txt")"
}
expect_ok "evaluate on the training data" -- "$STRATA" evaluate run
# 7 + 7 + 13 + 5 tokens: each text predicts all its tokens but the first.
check_loss_line "evaluate on the training data" 28 4 data.json
grep -qE "^exact answers: [01]/1$" "$OUT/stdout.txt" || fail "evaluate: no exact-answer count: $(cat "$OUT/stdout.txt")"

echo '["the cat sat on the mat </s>", "birds sing at dawn </s>"]' >no_questions.json
expect_ok "evaluate texts without questions" -- "$STRATA" evaluate run --dataset no_questions.json
check_loss_line "evaluate texts without questions" 10 2 no_questions.json
grep -q "exact answers" "$OUT/stdout.txt" && fail "evaluate without questions counted answers: $(cat "$OUT/stdout.txt")"

# One plain-text line of 100 words, far longer than max_seq_len 40: cut into windows,
# every token but the first predicted once. Unknown words are read as <unk>, and said.
for i in $(seq 1 25); do printf 'the cat sat zebra '; done >long.txt
echo >>long.txt
expect_ok "evaluate a line longer than the context" -- "$STRATA" evaluate run --dataset long.txt
check_loss_line "evaluate a line longer than the context" 99 1 long.txt
grep -qxF "note: 1 distinct word(s) not in the vocabulary were read as <unk>" "$OUT/stdout.txt" ||
  fail "evaluate long.txt: unknown words not noted: $(cat "$OUT/stdout.txt")"

# --- generate and chat: one convention -------------------------------------------------
q="where is the cat ?"
for sampling in "--max-tokens 6" "--temperature 1.5 --seed 7 --max-tokens 6" \
  "--repetition-penalty 1.7 --max-tokens 6"; do
  # shellcheck disable=SC2086
  expect_ok "generate \"User: $q\" $sampling" -- "$STRATA" generate run --prompt "User: $q" $sampling
  want=$(cat "$OUT/stdout.txt")
  # shellcheck disable=SC2086
  for line in "$q" "User: $q" "  User: $q"; do
    printf '%s\n' "$line" | "$STRATA" chat run $sampling >"$OUT/chat.txt" 2>&1 ||
      fail "chat \"$line\" $sampling failed: $(cat "$OUT/chat.txt")"
    CASES=$((CASES + 1))
    [ "$(cat "$OUT/chat.txt")" = "$want" ] ||
      fail "chat \"$line\" $sampling answered \"$(cat "$OUT/chat.txt")\", generate --prompt \"User: $q\" \"$want\""
  done
done
echo "| chat Q = generate --prompt \"User: Q\" | $want |"
"$STRATA" generate run --prompt "User: $q" --max-tokens 6 --repetition-penalty 1 >"$OUT/p1.txt" 2>&1
"$STRATA" generate run --prompt "User: $q" --max-tokens 6 >"$OUT/p0.txt" 2>&1
cmp -s "$OUT/p0.txt" "$OUT/p1.txt" || fail "--repetition-penalty 1 changed the answer"

# --- chat: the conversation, within the context ----------------------------------------
# Each turn is "User : where is the cat ?" (7 tokens) and an answer of at most 3 tokens
# plus </s>: at most 11. With 3 positions kept for the answer, three turns fit in 40
# positions before the fourth question; the fifth needs the oldest dropped.
printf '%s\n' "$q" "$q" "$q" "$q" "$q" "$q" "/reset" "$q" "exit" "$q" >conversation.txt
expect_ok "a conversation longer than the context" -- "$STRATA" chat run --max-tokens 3 <conversation.txt
mapfile -t answers <"$OUT/stdout.txt"
[ "${#answers[@]}" -eq 8 ] || fail "chat: expected 6 answers, (new conversation), 1 answer; got: $(cat "$OUT/stdout.txt")"
[ "${answers[6]}" = "(new conversation)" ] || fail "chat: /reset said \"${answers[6]}\""
[ "${answers[7]}" = "${answers[0]}" ] || fail "chat: after /reset \"${answers[7]}\", first answer \"${answers[0]}\""
notes=$(grep -c "oldest turns are dropped" "$OUT/stderr.txt")
[ "$notes" -eq 1 ] || fail "chat: the dropping note was printed $notes times: $(cat "$OUT/stderr.txt")"
echo "| chat over the context | $(cat "$OUT/stderr.txt") |"
# The second answer continued the first turn: the same as generating from the whole
# conversation written out (the answer ends with </s> in the context).
expect_ok "generate from the conversation so far" -- \
  "$STRATA" generate run --max-tokens 3 --prompt "User: $q ${answers[0]} </s> User: $q"
[ "$(cat "$OUT/stdout.txt")" = "${answers[1]}" ] ||
  fail "chat's second answer \"${answers[1]}\" is not generate's from the conversation: \"$(cat "$OUT/stdout.txt")\""
# The note is said again in a new conversation after /reset, once.
printf '%s\n' "$q" "$q" "$q" "$q" "$q" "/reset" "$q" "$q" "$q" "$q" "$q" >twice.txt
expect_ok "dropping in two conversations" -- "$STRATA" chat run --max-tokens 3 <twice.txt
notes=$(grep -c "oldest turns are dropped" "$OUT/stderr.txt")
[ "$notes" -eq 2 ] || fail "chat: two conversations over the context gave $notes notes"

# --- the penalty's range ----------------------------------------------------------------
usage() { EXPECT_RC=2 expect_error "$@"; }
usage "--repetition-penalty 0.5" '--repetition-penalty: must be a finite number in [1, 10], got 0.5' -- \
  "$STRATA" generate run --prompt "the cat" --repetition-penalty 0.5
usage "--repetition-penalty 11" '--repetition-penalty: must be a finite number in [1, 10], got 11' -- \
  "$STRATA" chat run --repetition-penalty 11
usage "--repetition-penalty nan" '--repetition-penalty: must be a finite number in [1, 10], got nan' -- \
  "$STRATA" chat run --repetition-penalty nan
"$STRATA" chat --help >"$OUT/help.txt" 2>&1
grep -qF '"User: <line>"' "$OUT/help.txt" || fail "chat --help does not give the User: convention"
"$STRATA" generate --help >"$OUT/help.txt" 2>&1
grep -qF 'User: <question>' "$OUT/help.txt" || fail "generate --help does not give the User: convention"

finish
