#!/usr/bin/env bash
# The web console's benchmark (not in CI): time to first render of the overview and the
# jobs list with 100k jobs stored (cold: a fresh browser context; warm: the same page
# navigated again), and, while console_load keeps 5,000 jobs/s flowing with 10 open
# pages, the CPU of cohort-console, the same renders again and how long a new job takes
# to show in a filtered jobs list (see console_bench.mjs).
#
#   bench/console/run.sh [--jobs=100000] [--pages=10] [--seconds=20] [--rate=5000]
#
# NO_BUILD=1 takes the binaries already in bazel-bin instead of building them.
#
# Builds cohort-dev, cohort-console and console_load, builds the front end from
# console/web's lockfile (npm ci: needs the npm registry) into a temp dir, starts
# cohort-dev and a cohort-console on 127.0.0.1 with free ports, fills the store with
# console_load, and drives Debian's chromium with playwright-core. Every process it
# starts is stopped by PID at exit.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
if [ "${NO_BUILD:-}" != 1 ]; then
  bazel build --config=ci //services/dev:cohort-dev //services/console:cohort-console //bench/console:console_load >&2
fi
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/web"
(cd console/web && tar --exclude=node_modules --exclude=dist -cf - .) | tar -C "$work/web" -xf -
(cd "$work/web" && npm ci --no-audit --no-fund --loglevel=error >&2 && npm run --silent build >&2)

# Binaries copied out of bazel-bin, so that another build cannot swap them mid-run.
mkdir -p "$work/bin"
cp bazel-bin/services/dev/cohort-dev bazel-bin/services/console/cohort-console bazel-bin/bench/console/console_load \
  "$work/bin/"

# Starts "$@" (stdout to $work/NAME.out) and waits for its ready line.
start() {
  local name="$1"; shift
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=("$!")
  for _ in $(seq 1 100); do
    grep -q '^listening ' "$work/$name.out" && return
    sleep 0.1
  done
  echo "$name: no ready line; its stderr:" >&2; cat "$work/$name.err" >&2; exit 1
}
field() { sed -n "s/^listening .*$2=\([^ ]*\).*/\1/p" "$work/$1.out"; }
start dev "$work/bin/cohort-dev" --listen=127.0.0.1:0 --metrics-listen=127.0.0.1:0 --data-dir="$work/data" \
  --capacity=256
grpc="$(field dev grpc)"
start console "$work/bin/cohort-console" --broker="$grpc" --scheduler="$grpc" --listen=127.0.0.1:0 \
  --metrics-listen=127.0.0.1:0 --assets-dir="$work/web/dist" --http-threads=64
export CONSOLE_URL="http://$(field console http)"
export DEV_PID="${pids[0]}" CONSOLE_PID="${pids[1]}"
export DEV_METRICS_URL="http://$(field dev metrics)/metrics"
export LOAD="$work/bin/console_load" GRPC="$grpc" WEB_DIR="$work/web"
node bench/console/console_bench.mjs "$@"
