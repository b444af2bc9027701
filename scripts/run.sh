#!/usr/bin/env bash
# Set up, build, train the flagship model (configs/rustgpt.yaml) and show it answering
# (the README's first command). Extra arguments go to `strata train`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
rm -rf runs/rustgpt
build/strata train configs/rustgpt.yaml --out runs/rustgpt "$@"
build/strata evaluate runs/rustgpt --dataset data/chat.json
