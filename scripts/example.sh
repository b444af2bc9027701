#!/usr/bin/env bash
# Runs docs/writing-a-layer.md as a new user would (scripts/test.sh calls it after the
# tests; it expects Strata built in build/, as scripts/build.sh leaves it):
#  - every file block of the doc (```LANG file=NAME) must be byte for byte
#    examples/custom_layer/NAME, and every file there must be in the doc;
#  - in an empty temporary folder, the doc's ```sh blocks and file blocks run in the
#    doc's order in one bash shell (a file block writes its file into the current
#    folder), with STRATA_SRC = this checkout and PREFIX = a temporary install prefix.
# So the page can neither drift from the example nor show a command CI did not run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
doc=$root/docs/writing-a-layer.md
example=$root/examples/custom_layer
tmp=$(mktemp -d "${TMPDIR:-/tmp}/strata-example.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s.%N)

mkdir -p "$tmp/blocks" "$tmp/work"
awk -v blocks="$tmp/blocks" '
  mode == "" && /^```sh$/ { mode = "sh"; next }
  mode == "" && /^```[a-z]+ file=[A-Za-z0-9_.-]+$/ {
    name = substr($2, 6); out = blocks "/" name; mode = "file"; printf "" > out
    print "cat > " name " <<'"'"'STRATA_DOC_EOF'"'"'"; next
  }
  mode == "" && /^```/ { mode = "skip"; next }   # output shown, not run
  mode != "" && /^```$/ {
    if (mode == "file") { print "STRATA_DOC_EOF"; close(out) }
    mode = ""; next
  }
  mode == "sh" { print }
  mode == "file" { print; print > out }
' "$doc" > "$tmp/walkthrough.sh"

status=0
for f in "$example"/*; do
  [ -f "$f" ] || continue  # build/, runs/, data/ of someone who followed the doc in place
  name=$(basename "$f")
  if [ ! -f "$tmp/blocks/$name" ]; then
    echo "example.sh: examples/custom_layer/$name is not shown in docs/writing-a-layer.md"; status=1
  elif ! cmp -s "$f" "$tmp/blocks/$name"; then
    echo "example.sh: docs/writing-a-layer.md's $name differs from examples/custom_layer/$name:"
    diff "$f" "$tmp/blocks/$name" || true; status=1
  fi
done
for f in "$tmp/blocks"/*; do
  [ -f "$example/$(basename "$f")" ] ||
    { echo "example.sh: the doc's $(basename "$f") is not in examples/custom_layer/"; status=1; }
done
[ "$status" -eq 0 ] || exit "$status"

echo "example.sh: running docs/writing-a-layer.md in $tmp/work"
(cd "$tmp/work" && STRATA_SRC="$root" PREFIX="$tmp/prefix" bash -euxo pipefail "$tmp/walkthrough.sh")
printf 'example.sh: docs/writing-a-layer.md ran in %.1f s\n' "$(echo "$(date +%s.%N) - $start" | bc)"
