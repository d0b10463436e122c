#!/usr/bin/env bash
# The README's first command. Installs what Cohort needs (tools/setup.sh), builds
# cohort-dev and cohort-demo, starts cohort-dev (broker, scheduler and executor in one
# process) on a temporary data directory with free ports, runs the demo against it, and
# stops cohort-dev. Exits with the demo's status and leaves nothing running.
# Arguments go to cohort-demo, e.g. `bash tools/demo.sh --jobs=10000`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bazel build //services/dev:cohort-dev //services/dev:cohort-demo

work=$(mktemp -d)
dev_pid=""
stop_dev() {
  if [ -n "$dev_pid" ] && kill -0 "$dev_pid" 2>/dev/null; then
    kill -TERM "$dev_pid"
    wait "$dev_pid" || echo "demo.sh: cohort-dev exited with status $?" >&2
  fi
  dev_pid=""
}
trap 'stop_dev; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# cohort-dev prints one line on stdout once all three parts are ready, with the ports
# it bound: read it through a FIFO (kept open until the end, so cohort-dev never
# blocks on it). Its stderr says where things are.
mkfifo "$work/ready"
bazel-bin/services/dev/cohort-dev --listen=127.0.0.1:0 --metrics-listen=127.0.0.1:0 \
  --data-dir="$work/data" >"$work/ready" &
dev_pid=$!
exec 3<"$work/ready"
if ! read -r -t 60 ready <&3; then
  echo "demo.sh: cohort-dev did not become ready" >&2
  exit 1
fi
grpc=$(sed -n 's/^listening grpc=\([^ ]*\) metrics=.*$/\1/p' <<<"$ready")
if [ -z "$grpc" ]; then
  echo "demo.sh: unexpected first line from cohort-dev: $ready" >&2
  exit 1
fi

status=0
bazel-bin/services/dev/cohort-demo --server="$grpc" "$@" || status=$?
stop_dev
exit "$status"
