#!/usr/bin/env bash
# Set up, build, and run the whole test suite (the README's second command), then
# docs/writing-a-layer.md as a user would (scripts/example.sh: it installs the build
# into a temporary prefix and builds, tests and trains with the example plugin).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
(cd build && ctest --output-on-failure -j"$(nproc)") | tee "$log"
ran=$(sed -n 's/.*tests failed out of \([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
bash scripts/example.sh
# The example's own ctest prints the last ctest summary: close with the whole count
# (the CTest entries plus the walkthrough).
echo "tests: $((ran + 1)) passed, 0 failed"
