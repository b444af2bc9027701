#!/usr/bin/env bash
# Runs docs/writing-a-layer.md as a new user would (scripts/test.sh calls it after the
# tests; it expects Strata built in build/, as scripts/build.sh leaves it): the doc's
# file blocks must be byte for byte examples/custom_layer/, and its sh blocks run in an
# empty temporary folder against a temporary install of Strata
# (scripts/lib_walkthrough.sh), so the page can neither drift from the example nor show
# a command CI did not run.
set -euo pipefail
source "$(dirname "$0")/lib_walkthrough.sh"
run_walkthrough example.sh docs/writing-a-layer.md examples/custom_layer
