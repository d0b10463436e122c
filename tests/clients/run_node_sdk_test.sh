#!/bin/sh
# Installs clients/node from this test's runfiles as a fresh clone would (`npm ci` from
# the committed lockfile; its prepare step generates the code from the protos and runs
# tsc --strict), then runs `node --test` against a real cohort-dev.
set -eu
runfiles="$TEST_SRCDIR/${TEST_WORKSPACE:-cohort}"
work="${TEST_TMPDIR:-$(mktemp -d)}"
mkdir -p "$work/src/clients" "$work/src/protos/cohort/v1" "$work/path/@cohort"
cp -rL "$runfiles/clients/node" "$work/src/clients/node"
cp -L "$runfiles"/protos/cohort/v1/*.proto "$work/src/protos/cohort/v1/"
cd "$work/src/clients/node"
HOME="$work" npm ci --no-audit --no-fund --loglevel=error
test -f dist/index.d.ts
ln -s "$work/src/clients/node" "$work/path/@cohort/client"
# No config file of the user's: the tests name their own.
mkdir -p "$work/xdg"
COHORT_DEV="$runfiles/services/dev/cohort-dev" COHORT_BROKER="$runfiles/services/broker/cohort-broker" \
  COHORT_EXECUTOR="$runfiles/services/executor/cohort-executor" XDG_CONFIG_HOME="$work/xdg" NODE_PATH="$work/path" exec node --test "$runfiles/tests/clients/node/"
