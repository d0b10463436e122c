#!/usr/bin/env bash
# Installs what Cohort needs (tools/setup.sh), builds, and runs the main demo: for now
# the coroutine runtime against Asio and asyncio+uvloop on the same workloads.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bash bench/runtime_compare.sh 3
