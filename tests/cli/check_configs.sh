#!/usr/bin/env bash
# `strata check` accepts every config in configs/ and rejects a malformed one with
# file:line:col and a non-zero exit. Usage: check_configs.sh STRATA (from the source root).
set -u
strata=$1
status=0
for config in configs/*.yaml; do
  if ! out=$("$strata" check "$config" 2>&1); then
    echo "FAIL: strata check $config was refused:"; echo "$out"; status=1
  fi
done
out=$("$strata" check tests/configs/malformed.yaml 2>&1)
code=$?
if [ "$code" -ne 1 ]; then echo "FAIL: malformed config exit code $code, expected 1"; status=1; fi
if ! grep -q "tests/configs/malformed.yaml:[0-9]*:[0-9]*: malformed YAML" <<<"$out"; then
  echo "FAIL: no file:line:col in: $out"; status=1
fi
[ $status -eq 0 ] && echo "check_configs: all configs accepted, malformed one rejected: $out"
exit $status
