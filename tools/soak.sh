#!/usr/bin/env bash
# The long version of the fault suite's kill -9 loop (tests/fault/kill9_loop_test.cc):
# kill -9 of the broker, the scheduler and the executor in turn, at random points,
# under continuous submits, then every acknowledged job checked.
#
#   tools/soak.sh              200 kills
#   tools/soak.sh 1000         1000 kills
#   COHORT_FAULT_SEED=42 tools/soak.sh 300    replay the random points of a run
#
# Builds with the shared gcc configuration (--config=ci) and runs the test binary
# directly, so the Bazel lock is not held while it runs and no test timeout applies.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-200}
bazel build --config=ci //tests/fault:kill9_loop_test
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "== kill -9 loop, $rounds kills (temp dir $tmp)"
COHORT_KILL9_ROUNDS="$rounds" TEST_SRCDIR="$PWD/bazel-bin/tests/fault/kill9_loop_test.runfiles" \
  TEST_WORKSPACE=cohort TEST_TMPDIR="$tmp" bazel-bin/tests/fault/kill9_loop_test
