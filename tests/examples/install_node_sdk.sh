#!/bin/sh
# Installs clients/node from the test's runfiles as a fresh clone would (`npm ci` from
# its lockfile; the prepare step generates the code from the protos and runs tsc) into
# DEST/src, and makes DEST/path/@cohort/client point at it: NODE_PATH=DEST/path lets the
# examples `require('@cohort/client')`. Needs the npm registry. Usage: install_node_sdk.sh DEST
set -eu
dest="$1"
runfiles="$TEST_SRCDIR/${TEST_WORKSPACE:-cohort}"
mkdir -p "$dest/src/clients" "$dest/src/protos/cohort/v1" "$dest/path/@cohort"
cp -rL "$runfiles/clients/node" "$dest/src/clients/node"
cp -L "$runfiles"/protos/cohort/v1/*.proto "$dest/src/protos/cohort/v1/"
cd "$dest/src/clients/node"
HOME="$dest" npm_config_update_notifier=false /usr/bin/node /usr/bin/npm ci --no-audit --no-fund --loglevel=error
test -f dist/index.js
ln -sfn "$dest/src/clients/node" "$dest/path/@cohort/client"
