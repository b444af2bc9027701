#!/usr/bin/env bash
# CTest helper for command-line tests: expect_cli.sh STATUS REGEX COMMAND [ARGS...]
# Runs COMMAND and passes when its exit status is STATUS ("0", or "fail" for any
# non-zero status) and its output (stdout and stderr together) matches the extended
# regular expression REGEX. Prints the output either way.
set -uo pipefail
expected=$1 regex=$2
shift 2
output=$("$@" 2>&1)
status=$?
printf '%s\n' "$output"
echo "[exit status $status]"
if [ "$expected" = fail ]; then
  [ "$status" -ne 0 ] || { echo "expect_cli: expected a non-zero exit status"; exit 1; }
else
  [ "$status" -eq "$expected" ] || { echo "expect_cli: expected exit status $expected"; exit 1; }
fi
grep -Eq -- "$regex" <<<"$output" || { echo "expect_cli: output does not match: $regex"; exit 1; }
