#!/usr/bin/env bash
# Cohort against BullMQ and Sidekiq on this machine, same no-op workloads, one
# interleaved run, one table (bench/peers/peers.py says what is measured and how).
#
#   bash bench/peers/run.sh [--jobs 20000] [--runs 3] [--no-build] [peers.py flags...]
#
# Builds cohort-broker and cohort-executor (--config=ci; --no-build takes bazel-bin's as
# they are), installs clients/python's generated stubs into a temp dir (Debian's
# python3-grpcio), BullMQ with `npm ci` from bench/peers/bullmq's lockfile; needs
# Debian's redis-server and ruby-sidekiq. Everything runs on 127.0.0.1 in one temp dir,
# removed at the end (kept, with the logs, on failure); every process is stopped by its PID, also on Ctrl-C.
set -euo pipefail
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

for tool in redis-server sidekiq ruby node npm /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool not found (apt-get install redis-server ruby-sidekiq nodejs npm python3-grpcio)" >&2; exit 1; }
done
/usr/bin/python3 -c 'import grpc' 2>/dev/null || { echo "run.sh: no grpc for /usr/bin/python3 (apt-get install python3-grpcio)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/cohort-peers.XXXXXX")"
child=""
cleanup() {
  local status=$?
  if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; fi
  if [ "$status" = 0 ]; then rm -rf "$work"; else echo "run.sh: logs kept in $work" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$build" = 1 ]; then
  (cd "$root" && bazel build --config=ci //services/broker:cohort-broker //services/executor:cohort-executor)
fi
# Copies, so that another build replacing bazel-bin's files cannot change a run midway.
mkdir -p "$work/bin"
cp "$root/bazel-bin/services/broker/cohort-broker" "$root/bazel-bin/services/executor/cohort-executor" "$work/bin/"

# The stubs as a user gets them (pip install of clients/python, offline), from a copy
# laid out like the repository so that its setup.py finds ../../protos.
mkdir -p "$work/src/clients" "$work/src/protos/cohort/v1"
cp -r "$root/clients/python" "$work/src/clients/python"
cp "$root"/protos/cohort/v1/*.proto "$work/src/protos/cohort/v1/"
PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 /usr/bin/python3 -m pip install --quiet \
  --no-build-isolation --no-deps --target "$work/site" "$work/src/clients/python" 2>&1 \
  | { grep -v "as the 'root' user" || true; } >&2
(cd "$here/bullmq" && npm ci --silent --no-audit --no-fund >&2)

# The executor's default capacity, as its --help states it, names its column.
default_capacity="$("$work/bin/cohort-executor" --help 2>&1 | sed -n 's/.*--capacity.*(default \([0-9]*\)).*/\1/p' | head -1)"
commit="$(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- services libs protos || echo '+uncommitted changes')"
versions="bench/peers/run.sh $*: Cohort $commit; $(redis-server --version | cut -d' ' -f1-3); BullMQ $(node -p 'require("'"$here"'/bullmq/node_modules/bullmq/package.json").version'); Sidekiq $(ruby -e 'require "sidekiq"; print Sidekiq::VERSION'); grpcio $(/usr/bin/python3 -c 'import grpc; print(grpc.__version__)'); $(nproc) cores"

/usr/bin/python3 "$here/peers.py" --broker "$work/bin/cohort-broker" --executor "$work/bin/cohort-executor" \
  --python-site "$work/site" --work "$work" --default-capacity "${default_capacity:-0}" --versions "$versions" "${args[@]}" &
child=$!
status=0
wait "$child" || status=$?
child=""
exit "$status"
