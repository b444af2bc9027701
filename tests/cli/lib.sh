# Helpers for the end-to-end tests of the `strata` binary (sourced, not run).
#
#   source lib.sh STRATA_BINARY
#   expect_error NAME 'expected text' -- strata check x.yaml
#
# Each case must exit with status 1 (a reported error: not 0, not a crash, not a
# signal), print "strata: error: " and the expected text on stderr, and leave the work
# directory exactly as it was (no file created, none half-written). A table of cases
# and their messages is printed, so a run shows what every bad input says.
set -uo pipefail

STRATA=$(readlink -f "$1")
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/strata-cli.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$ROOT"' EXIT
WORK=$ROOT/work  # the cases run here
OUT=$ROOT/out    # their captured output, outside WORK
mkdir -p "$WORK" "$OUT"
cd "$WORK" || exit 1
FAILED=0
CASES=0

fail() {
  echo "FAIL $*" >&2
  FAILED=$((FAILED + 1))
}

# Everything under the work directory: names, types, and file checksums.
snapshot() {
  find . -printf '%p %y\n' | sort
  find . -type f -print0 | sort -z | xargs -0 -r md5sum
}

# [EXPECT_RC=2] expect_error NAME TEXT -- COMMAND...   (exit status 1 unless EXPECT_RC)
expect_error() {
  local name=$1 text=$2 expected_rc=${EXPECT_RC:-1}
  shift 3
  CASES=$((CASES + 1))
  local before after rc
  before=$(snapshot)
  "$@" >/dev/null 2>"$OUT/stderr.txt"
  rc=$?
  local message
  message=$(cat "$OUT/stderr.txt")
  after=$(snapshot)
  if [ "$rc" -ne "$expected_rc" ]; then
    fail "$name: exit status $rc (expected $expected_rc); stderr: $message"
  elif ! grep -qF -- "strata: error: " <<<"$message"; then
    fail "$name: no 'strata: error:' line; stderr: $message"
  elif ! grep -qF -- "$text" <<<"$message"; then
    fail "$name: message lacks \"$text\"; got: $message"
  elif [ "$before" != "$after" ]; then
    fail "$name: files changed: $(diff <(echo "$before") <(echo "$after") | head -5)"
  else
    printf '| %-34s | %s |\n' "$name" "${message//$'\n'/ }"
  fi
}

# Runs COMMAND and requires success.
expect_ok() {
  local name=$1
  shift 2
  CASES=$((CASES + 1))
  if ! "$@" >"$OUT/stdout.txt" 2>"$OUT/stderr.txt"; then
    fail "$name: failed: $(cat "$OUT/stderr.txt")"
  fi
}

# CRC-32 (the zip polynomial) of a file, as a decimal number.
crc32_of() {
  perl -e 'my @t; for my $i (0..255) { my $c = $i; for (1..8) { $c = $c & 1 ? 0xEDB88320 ^ ($c >> 1) : $c >> 1 } $t[$i] = $c }
           local $/; open my $f, "<:raw", $ARGV[0] or die; my $d = <$f>; my $c = 0xFFFFFFFF;
           $c = $t[($c ^ ord $_) & 0xFF] ^ ($c >> 8) for split //, $d; print $c ^ 0xFFFFFFFF' "$1"
}

# Rewrites the manifest entry of checkpoint file NAME in DIR to its current size and
# CRC, as if it had been saved that way.
reseal() {
  local dir=$1 name=$2
  perl -0pi -e 's/("\Q'"$name"'\E": \{\s*"bytes": )\d+(,\s*"crc32": )\d+/${1}'"$(stat -c%s "$dir/$name")"'${2}'"$(crc32_of "$dir/$name")"'/' \
    "$dir/manifest.json"
}

# A tiny corpus and config: trains in well under a second.
write_tiny_run() {
  cat >data.json <<'EOF'
["the cat sat on the mat </s>", "a dog ran in the park </s>",
 "User: where is the cat ? Assistant: on the mat </s>", "birds sing at dawn </s>"]
EOF
  cat >tiny.yaml <<'EOF'
seed: 3
model:
  max_seq_len: 16
  layers:
    - {type: Embedding, dim: 8}
    - {type: TransformerBlock, name: blocks, repeat: 1, dim: 8, hidden: 16}
    - {type: OutputProjection}
optimizer: {type: Adam, lr: 0.01, clip_norm: 5.0}
training:
  checkpoint_every: 2
  phases:
    - {name: p, data: data.json, epochs: 3, batch: 1}
EOF
}

finish() {
  echo "$CASES cases, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
