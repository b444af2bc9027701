#!/usr/bin/env bash
# `strata plot DIR`: a valid PNG of the loss curves from a real training run (metrics.csv
# only, or steps.csv if the run writes it) and from hand-written steps.csv and
# validation.csv files (columns found by name, in any order); every bad input a clear
# error that leaves the directory as it was; gnuplot missing, failing or hanging.
# Usage: plot.sh path/to/strata
SRC=$(cd "$(dirname "$0")/../.." && pwd)
source "$(dirname "$0")/lib.sh" "$1"

# A PNG: the signature, an IHDR chunk first with width and height > 0, an IEND chunk
# last, and every chunk's length inside the file.
valid_png() {
  perl -e '
    local $/; open my $f, "<:raw", $ARGV[0] or die "cannot read $ARGV[0]\n"; my $d = <$f>;
    substr($d, 0, 8) eq "\x89PNG\r\n\x1a\n" or die "no PNG signature\n";
    my ($pos, $first, $last) = (8, undef, undef);
    while ($pos + 12 <= length $d) {
      my ($len, $type) = unpack("N a4", substr($d, $pos, 8));
      $pos + 12 + $len <= length $d or die "chunk $type runs past the end\n";
      $first //= $type; $last = $type;
      if ($type eq "IHDR") {
        my ($w, $h) = unpack("N N", substr($d, $pos + 8, 8));
        $w > 0 && $h > 0 or die "IHDR ${w}x$h\n";
        print "${w}x$h ";
      }
      $pos += 12 + $len;
    }
    $first eq "IHDR" or die "first chunk $first\n";
    $last eq "IEND" && $pos == length $d or die "no IEND at the end\n";
    print length($d), " bytes\n";' "$1"
}

echo "| case | message |"
echo "|---|---|"

# --- a real training run --------------------------------------------------------------
"$STRATA" train "$SRC/configs/tiny.yaml" --out run --data "pretrain=$SRC/data/pretraining.json" \
  --data "instruct=$SRC/data/chat.json" >"$OUT/train.txt" 2>&1 || fail "training tiny.yaml failed: $(cat "$OUT/train.txt")"
# train itself leaves the plot in the run directory.
CASES=$((CASES + 1))
png=$(valid_png run/loss.png 2>&1) || fail "train wrote no valid run/loss.png: $png"
grep -qE "^plotted [0-9]+ training points .* to run/loss.png$" "$OUT/train.txt" ||
  fail "train did not say it plotted: $(tail -3 "$OUT/train.txt")"
CASES=$((CASES + 1))
if "$STRATA" plot run >"$OUT/plot.txt" 2>&1; then
  png=$(valid_png run/loss.png 2>&1) || fail "plot of the tiny run: not a valid PNG: $png"
  grep -qE "^plotted [0-9]+ training points \((steps|metrics).csv\).* to run/loss.png$" "$OUT/plot.txt" ||
    fail "plot of the tiny run said: $(cat "$OUT/plot.txt")"
  echo "| tiny.yaml run | $(cat "$OUT/plot.txt"); $png |"
else
  fail "plot of the tiny run failed: $(cat "$OUT/plot.txt")"
fi

# --- hand-written per-step and validation files, columns in another order ---------------
mkdir hand
{
  echo "phase,step,epoch,grad_norm,loss,learning_rate,tokens_per_second"
  for s in $(seq 1 120); do echo "pre,$s,0,1.5,$(awk -v s="$s" 'BEGIN { print 6 * exp(-s / 40) + 1 }'),0.001,5000"; done
  echo "pre,121,0,1.5,nan,0.001,5000"
} >hand/steps.csv
printf 'step,phase,epoch,loss,perplexity\n40,pre,0,3.5,33.1\n80,pre,0,2.6,13.5\r\n120,pre,0,2.2,9.0\n' >hand/validation.csv
CASES=$((CASES + 1))
if "$STRATA" plot hand --out "hand/it's a \"curve\".png" >"$OUT/plot.txt" 2>"$OUT/err.txt"; then
  png=$(valid_png "hand/it's a \"curve\".png" 2>&1) || fail "hand-written CSVs: not a valid PNG: $png"
  grep -qxF "plotted 120 training points (steps.csv) and 3 validation points (validation.csv) to hand/it's a \"curve\".png" \
    "$OUT/plot.txt" || fail "hand-written CSVs: $(cat "$OUT/plot.txt")"
  grep -qF "hand/steps.csv: 1 row(s) with a non-finite loss left out" "$OUT/err.txt" ||
    fail "hand-written CSVs: the NaN row was not reported: $(cat "$OUT/err.txt")"
  echo "| steps.csv + validation.csv | $(cat "$OUT/plot.txt"); $png |"
else
  fail "plot of hand-written CSVs failed: $(cat "$OUT/plot.txt" "$OUT/err.txt")"
fi
ls -a hand | grep -q strata-tmp && fail "a temporary file was left in hand/"
# A header-only validation.csv (no evaluation yet) plots the training curve alone.
mkdir early && cp hand/steps.csv early/ && echo "step,phase,epoch,loss,perplexity" >early/validation.csv
expect_ok "validation.csv with no rows yet" -- "$STRATA" plot early
grep -qxF "plotted 120 training points (steps.csv) to early/loss.png" "$OUT/stdout.txt" ||
  fail "header-only validation.csv: $(cat "$OUT/stdout.txt")"
# A run directory name gnuplot would misread is only a title: quoted.
mkdir "odd'dir" && cp hand/steps.csv "odd'dir/"
expect_ok "a quote in the run directory's name" -- "$STRATA" plot "odd'dir"
valid_png "odd'dir/loss.png" >/dev/null || fail "odd'dir/loss.png is not a valid PNG"

# --- bad inputs: one clear error, nothing written ---------------------------------------
mkdir empty_dir
expect_error "no such directory" 'nowhere: no such run directory' -- "$STRATA" plot nowhere
expect_error "no CSV in the directory" 'empty_dir: no steps.csv or metrics.csv to plot (is it a run directory?)' -- \
  "$STRATA" plot empty_dir
mkdir bad && : >bad/steps.csv
expect_error "empty steps.csv" 'bad/steps.csv: empty file (expected a header line with step and loss)' -- "$STRATA" plot bad
echo "step,phase,epoch,loss" >bad/steps.csv
expect_error "steps.csv with no rows" 'bad/steps.csv: no rows with a finite loss to plot' -- "$STRATA" plot bad
printf 'step,phase,epoch,value\n1,p,0,2.0\n' >bad/steps.csv
expect_error "no loss column" 'bad/steps.csv: no "loss" column in the header line "step,phase,epoch,value"' -- "$STRATA" plot bad
printf 'step,loss\n1,2.0\n2,abc\n' >bad/steps.csv
expect_error "a loss that is not a number" 'bad/steps.csv:3: loss is not a number: "abc"' -- "$STRATA" plot bad
printf 'step,loss\n1,2.0\n2,1.5,7\n' >bad/steps.csv
expect_error "a ragged row" 'bad/steps.csv:3: 3 fields, the header has 2' -- "$STRATA" plot bad
printf 'step,loss\n1,2.0\n' >bad/steps.csv
: >bad/validation.csv
expect_error "empty validation.csv" 'bad/validation.csv: empty file' -- "$STRATA" plot bad
rm bad/validation.csv
expect_error "output directory missing" 'no/such/dir/x.png: cannot write: No such file or directory' -- \
  "$STRATA" plot bad --out no/such/dir/x.png
EXPECT_RC=2 expect_error "--timeout 0" '--timeout: must be a finite number in [0.1, 3600], got 0' -- \
  "$STRATA" plot bad --timeout 0

# --- gnuplot missing, failing, hanging ----------------------------------------------------
mkdir "$ROOT/fake"
expect_error "gnuplot not on PATH" 'gnuplot not found on PATH: strata plot draws with it (Debian: apt-get install gnuplot-nox' -- \
  env PATH="$ROOT/fake" "$STRATA" plot bad
printf '#!/bin/sh\ncat >/dev/null\necho "line 3: unknown terminal" >&2\nexit 1\n' >"$ROOT/fake/gnuplot"
chmod +x "$ROOT/fake/gnuplot"
expect_error "gnuplot failing" 'gnuplot failed (exit status 1): line 3: unknown terminal' -- \
  env PATH="$ROOT/fake:$PATH" "$STRATA" plot bad
printf '#!/bin/sh\ncat >/dev/null\necho not a png\n' >"$ROOT/fake/gnuplot"
expect_error "gnuplot writing no PNG" 'gnuplot wrote no PNG' -- env PATH="$ROOT/fake:$PATH" "$STRATA" plot bad
printf '#!/bin/sh\nexec sleep 30\n' >"$ROOT/fake/gnuplot"
start=$SECONDS
expect_error "gnuplot hanging" 'gnuplot did not finish within 0.5 s: killed it' -- \
  env PATH="$ROOT/fake:$PATH" "$STRATA" plot bad --timeout 0.5
[ $((SECONDS - start)) -lt 10 ] || fail "the hanging gnuplot was not stopped at its time limit"

# Training succeeds without gnuplot, or with a failing one: one note, exit 0, no PNG.
train_without_plot() {  # $1: case name, $2: PATH, $3: the note's reason, $4: run dir
  CASES=$((CASES + 1))
  env PATH="$2" "$STRATA" train "$SRC/configs/tiny.yaml" --out "$4" \
    --data "pretrain=$SRC/data/pretraining.json" --data "instruct=$SRC/data/chat.json" \
    >"$OUT/np.txt" 2>"$OUT/np.err"
  local rc=$?
  [ "$rc" -eq 0 ] || fail "$1: train exited $rc: $(cat "$OUT/np.err")"
  [ "$(wc -l <"$OUT/np.err")" -eq 1 ] && grep -qF "strata: note: no loss plot: $3" "$OUT/np.err" ||
    fail "$1: stderr: $(cat "$OUT/np.err")"
  [ ! -e "$4/loss.png" ] || fail "$1: a loss.png was left"
  [ -f "$4/checkpoint/manifest.json" ] || fail "$1: no checkpoint"
  echo "| $1 | $(cat "$OUT/np.err") |"
}
printf '#!/bin/sh\ncat >/dev/null\necho "line 3: unknown terminal" >&2\nexit 1\n' >"$ROOT/fake/gnuplot"
train_without_plot "train, gnuplot failing" "$ROOT/fake:$PATH" "gnuplot failed (exit status 1)" failplot
rm "$ROOT/fake/gnuplot"
train_without_plot "train, gnuplot not on PATH" "$ROOT/fake" "gnuplot not found on PATH" noplot

finish
