#!/bin/sh
# Installs clients/python from the test's runfiles into DEST/site as a user does (pip,
# offline, on Debian's /usr/bin/python3), from a copy with the repository's layout so
# that setup.py finds ../../protos. Usage: install_python_sdk.sh DEST
set -eu
dest="$1"
runfiles="$TEST_SRCDIR/${TEST_WORKSPACE:-cohort}"
mkdir -p "$dest/src/clients" "$dest/src/protos/cohort/v1"
cp -rL "$runfiles/clients/python" "$dest/src/clients/python"
cp -L "$runfiles"/protos/cohort/v1/*.proto "$dest/src/protos/cohort/v1/"
PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m pip install \
  --quiet --no-build-isolation --no-deps --target "$dest/site" "$dest/src/clients/python" 2>&1 |
  grep -v "as the 'root' user" || true
test -f "$dest/site/cohort/_proto/broker_pb2.py"
