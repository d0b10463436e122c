#!/usr/bin/env bash
# Runs the runtime workloads on Cohort's runtime, standalone Asio and Python asyncio
# on uvloop, best of N runs each, and prints a table with the ratios.
#   bash bench/runtime_compare.sh [runs]      (default 3 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}

bazel build --config=ci -c opt //bench:runtime_bench //bench:asio_bench >/dev/null 2>&1 ||
  { echo "build failed: bazel build //bench:runtime_bench //bench:asio_bench" >&2; exit 1; }

# best_of CMD...: runs CMD $runs times and prints "name min_seconds" per workload.
best_of() {
  for _ in $(seq "$runs"); do "$@"; done |
    awk '{ if (!($1 in best) || $2 < best[$1]) best[$1] = $2; if (!($1 in seen)) { seen[$1] = 1; order[n++] = $1 } }
         END { for (i = 0; i < n; i++) print order[i], best[order[i]] }'
}

cohort=$(best_of bazel-bin/bench/runtime_bench)
asio=$(best_of bazel-bin/bench/asio_bench)
# Debian's python3 (python3-uvloop is installed for it), not a pyenv interpreter on PATH.
asyncio=$(best_of /usr/bin/python3 bench/peers/asyncio_bench.py)

echo "Runtime workloads, best of $runs runs, seconds (lower is better)"
join <(echo "$cohort" | sort) <(echo "$asio" | sort) | join - <(echo "$asyncio" | sort) |
  awk -v order="gather_100k queue_1m yield_1m timers_100k post_1m" '
    { c[$1] = $2; a[$1] = $3; p[$1] = $4 }
    END {
      printf "%-12s %10s %10s %14s %16s %14s\n", "workload", "cohort", "asio", "asyncio+uvloop", "uvloop/cohort", "cohort/asio"
      split(order, names, " ")
      for (i = 1; i <= 5; i++) {
        w = names[i]
        printf "%-12s %10.4f %10.4f %14.4f %15.1fx %13.2fx\n", w, c[w], a[w], p[w], p[w] / c[w], c[w] / a[w]
      }
    }'
