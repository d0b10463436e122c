#!/usr/bin/env bash
# Fails if any C++ file outside libs/runtime includes libs/runtime/internal/ or names
# runtime::internal:: in code: those are the runtime's private parts, and other
# libraries go through its public primitives (external_completion.h, check.h,
# intrusive_list.h, ...). Scans the source tree this test's script lives in, so it is
# tagged "external" (never cached) and "local".
set -euo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
root=$(cd "$(dirname "$script")/../.." && pwd)
[[ -f "$root/WORKSPACE" && -d "$root/libs/runtime" ]] ||
  { echo "cannot find the workspace from $script" >&2; exit 2; }

hits=$(cd "$root" && grep -rnE --include='*.h' --include='*.cc' \
  'libs/runtime/internal/|runtime::internal::' libs services bench tests examples 2>/dev/null |
  grep -v '^libs/runtime/' |
  grep -vE '^[^:]+:[0-9]+:[[:space:]]*//' || true)
if [[ -n "$hits" ]]; then
  echo "the runtime's internal parts are used outside libs/runtime:" >&2
  echo "$hits" >&2
  echo "use a public header (e.g. libs/runtime/external_completion.h) instead" >&2
  exit 1
fi
echo "no use of libs/runtime/internal outside libs/runtime"
