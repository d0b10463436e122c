#!/usr/bin/env bash
# Cohort through its Python SDK (an asyncio client and a cohort.Worker at concurrency
# 16) against Celery's prefork, threads and gevent pools on Redis, same no-op workloads,
# interleaved runs, one table with the ratios (celery_bench.py says what is measured).
#
#   bash bench/celery/run.sh [--runs 3] [--jobs 5000] [--redis-fsync always] [--no-build] [celery_bench.py flags...]
#   bash bench/celery/run.sh --mode overhead [--calls 2000]   # the SDK's own µs per call
#
# Builds cohort-broker (--config=ci; --no-build takes bazel-bin's as it is), installs
# clients/python into a temp dir as a user does (pip, offline, on Debian's python3-grpcio
# and python3-protobuf); needs Debian's redis-server, python3-celery, python3-redis and
# python3-gevent. Everything runs on 127.0.0.1 in one temp dir, removed at the end
# (kept, with the logs, on failure); every process is stopped by its PID, also on Ctrl-C.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1  # nothing written into the checkout
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

build=1
args=()
for a in "$@"; do
  case "$a" in
    --no-build) build=0 ;;
    *) args+=("$a") ;;
  esac
done

command -v redis-server >/dev/null || { echo "run.sh: redis-server not found (apt-get install redis-server)" >&2; exit 1; }
/usr/bin/python3 -c 'import grpc, celery, redis, gevent' 2>/dev/null || {
  echo "run.sh: /usr/bin/python3 lacks grpc, celery, redis or gevent (apt-get install python3-grpcio python3-celery python3-redis python3-gevent)" >&2
  exit 1
}

work="$(mktemp -d "${TMPDIR:-/tmp}/cohort-celery.XXXXXX")"
child=""
cleanup() {
  local status=$?
  if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; fi
  if [ "$status" = 0 ]; then rm -rf "$work"; else echo "run.sh: logs kept in $work" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$build" = 1 ]; then
  (cd "$root" && bazel build --config=ci //services/broker:cohort-broker)
fi
# A copy, so that another build replacing bazel-bin's file cannot change a run midway.
mkdir -p "$work/bin"
cp "$root/bazel-bin/services/broker/cohort-broker" "$work/bin/"

# The SDK as a user gets it (pip install of clients/python, offline), from a copy laid
# out like the repository so that its setup.py finds ../../protos.
mkdir -p "$work/src/clients" "$work/src/protos/cohort/v1"
cp -r "$root/clients/python" "$work/src/clients/python"
cp "$root"/protos/cohort/v1/*.proto "$work/src/protos/cohort/v1/"
PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 /usr/bin/python3 -m pip install --quiet \
  --no-build-isolation --no-deps --target "$work/site" "$work/src/clients/python" 2>&1 \
  | { grep -v "as the 'root' user" || true; } >&2

commit="$(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- services libs protos clients/python || echo '+uncommitted changes')"
versions="bench/celery/run.sh $*: Cohort $commit; $(redis-server --version | cut -d' ' -f1-3); $(/usr/bin/python3 -c 'import sys, celery, gevent, grpc; print(f"Python {sys.version.split()[0]}; Celery {celery.__version__}; gevent {gevent.__version__}; grpcio {grpc.__version__}")'); $(nproc) cores"

/usr/bin/python3 "$here/celery_bench.py" --broker "$work/bin/cohort-broker" --python-site "$work/site" \
  --work "$work" --versions "$versions" "${args[@]}" &
child=$!
status=0
wait "$child" || status=$?
child=""
exit "$status"
