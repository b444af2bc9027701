# Sourced, not run: run_walkthrough NAME DOC EXAMPLE runs the walkthrough DOC (a path
# under the checkout, e.g. docs/writing-an-optimizer.md) as a new user would, against
# the Strata built in build/ (as scripts/build.sh leaves it); NAME prefixes its messages.
#  - every file block of the doc (```LANG file=NAME) must be byte for byte EXAMPLE/NAME,
#    and every file in EXAMPLE must be in the doc;
#  - in an empty temporary folder, the doc's ```sh blocks and file blocks run in the
#    doc's order in one bash shell (a file block writes its file into the current
#    folder), with STRATA_SRC = this checkout and PREFIX = a temporary install prefix.
# So the page can neither drift from the example nor show a command CI did not run.
# scripts/example.sh and scripts/example_optimizer.sh are its two walkthroughs.

run_walkthrough() {
  local name=$1 doc_rel=$2 example_rel=$3
  local root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  local doc=$root/$doc_rel example=$root/$example_rel
  local tmp start status=0 f
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/strata-walkthrough.XXXXXX")
  # Removed when the script exits (a RETURN trap would not survive `set -e` failures).
  trap "rm -rf '$tmp'" EXIT
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

  for f in "$example"/*; do
    [ -f "$f" ] || continue  # build/, runs/, data/ of someone who followed the doc in place
    local file
    file=$(basename "$f")
    if [ ! -f "$tmp/blocks/$file" ]; then
      echo "$name: $example_rel/$file is not shown in $doc_rel"; status=1
    elif ! cmp -s "$f" "$tmp/blocks/$file"; then
      echo "$name: $doc_rel's $file differs from $example_rel/$file:"
      diff "$f" "$tmp/blocks/$file" || true; status=1
    fi
  done
  for f in "$tmp/blocks"/*; do
    [ -f "$f" ] || continue
    [ -f "$example/$(basename "$f")" ] ||
      { echo "$name: the doc's $(basename "$f") is not in $example_rel/"; status=1; }
  done
  [ "$status" -eq 0 ] || return "$status"

  echo "$name: running $doc_rel in $tmp/work"
  (cd "$tmp/work" && STRATA_SRC="$root" PREFIX="$tmp/prefix" bash -euxo pipefail "$tmp/walkthrough.sh")
  printf '%s: %s ran in %.1f s\n' "$name" "$doc_rel" "$(echo "$(date +%s.%N) - $start" | bc)"
}
