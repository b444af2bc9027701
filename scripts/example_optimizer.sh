#!/usr/bin/env bash
# Runs docs/writing-an-optimizer.md as a new user would (scripts/test.sh calls it after
# scripts/example.sh; it expects Strata built in build/): the doc's file blocks must be
# byte for byte examples/custom_optimizer/, and its sh blocks run in an empty temporary
# folder against a temporary install of Strata (scripts/lib_walkthrough.sh).
set -euo pipefail
source "$(dirname "$0")/lib_walkthrough.sh"
run_walkthrough example_optimizer.sh docs/writing-an-optimizer.md examples/custom_optimizer
