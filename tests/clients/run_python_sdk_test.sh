#!/bin/sh
# Installs clients/python from this test's runfiles the way a user does (pip, offline,
# on Debian's /usr/bin/python3) into a temp dir, then runs `pytest` against a real
# cohort-dev or `mypy` over the installed package and the tests.
# Usage (sh_test args): pytest | mypy
set -eu
mode="$1"
runfiles="$TEST_SRCDIR/${TEST_WORKSPACE:-cohort}"
work="${TEST_TMPDIR:-$(mktemp -d)}"
export PYTHONDONTWRITEBYTECODE=1 PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# The repository's layout, so that setup.py finds ../../protos as in a checkout.
mkdir -p "$work/src/clients" "$work/src/protos/cohort/v1"
cp -rL "$runfiles/clients/python" "$work/src/clients/python"
cp -L "$runfiles"/protos/cohort/v1/*.proto "$work/src/protos/cohort/v1/"
/usr/bin/python3 -m pip install --quiet --no-build-isolation --no-deps --target "$work/site" \
  "$work/src/clients/python" 2>&1 | grep -v "as the 'root' user" || true
test -f "$work/site/cohort/_proto/broker_pb2.py"

tests="$runfiles/tests/clients/python"
case "$mode" in
  pytest)
    cd "$tests"
    mkdir -p "$work/xdg"  # no config file of the user's: the tests name their own
    COHORT_DEV="$runfiles/services/dev/cohort-dev" COHORT_BROKER="$runfiles/services/broker/cohort-broker" \
      COHORT_EXECUTOR="$runfiles/services/executor/cohort-executor" COHORTCTL="$runfiles/services/cli/cohortctl" \
      XDG_CONFIG_HOME="$work/xdg" PYTHONPATH="$work/site:$tests" \
      exec /usr/bin/python3 -m pytest -q -c "$tests/pytest.ini" "$tests" ;;
  mypy)
    cd "$work/site"
    MYPYPATH="$work/site" exec /usr/bin/python3 -m mypy --cache-dir="$work/mypy-cache" \
      --config-file "$work/src/clients/python/pyproject.toml" cohort "$tests/test_client.py" \
      "$tests/test_worker.py" "$tests/worker_app.py" "$tests/test_config.py" "$tests/test_kinds.py" \
      "$tests/test_operations.py" "$tests/test_failover.py" "$tests/replica_group.py" ;;
  *)
    echo "usage: $0 pytest|mypy" >&2
    exit 2 ;;
esac
