#!/bin/sh
# Runs a Python test script from this test's runfiles with Debian's python3 (which has
# python3-grpcio, python3-protobuf and python3-yaml), whatever python3 is first on PATH.
# Usage (sh_test args): <workspace-relative script> [script args...]
set -eu
script="$1"
shift
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 "$TEST_SRCDIR/${TEST_WORKSPACE:-cohort}/$script" "$@"
