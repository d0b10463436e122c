#!/usr/bin/env bash
# Builds the console's front end from its lockfile (npm ci, then tsc and vite) and runs
# console.test.mjs: a real browser (Debian's chromium) against cohort-dev and
# cohort-console. Needs the npm registry and /usr/bin/chromium (apt-get install chromium).
set -euo pipefail
root="${TEST_SRCDIR}/${TEST_WORKSPACE}"
if [ ! -x /usr/bin/chromium ]; then
  echo "console_browser_test: /usr/bin/chromium is missing: apt-get install chromium" >&2
  exit 1
fi
web="${TEST_TMPDIR}/web"
mkdir -p "$web"
# The sources only (runfiles are symlinks; npm and vite want real files).
(cd "$root/console/web" && find . -type f -o -type l) | while read -r f; do
  mkdir -p "$web/$(dirname "$f")"
  cp -L "$root/console/web/$f" "$web/$f"
done
cd "$web"
# Bazel's sandbox keeps the real home read-only: npm's cache and logs, and anything the
# browser writes, go under the test's own temp dir.
export HOME="${TEST_TMPDIR}/home"
export npm_config_cache="${TEST_TMPDIR}/npm-cache"
mkdir -p "$HOME"
npm ci --no-audit --no-fund --loglevel=error >"${TEST_TMPDIR}/npm-ci.log" 2>&1 || { cat "${TEST_TMPDIR}/npm-ci.log" >&2; exit 1; }
npm run --silent build >"${TEST_TMPDIR}/build.log" 2>&1 || { cat "${TEST_TMPDIR}/build.log" >&2; exit 1; }

export COHORT_DEV="$root/services/dev/cohort-dev"
export COHORT_CONSOLE="$root/services/console/cohort-console"
export COHORTCTL="$root/services/cli/cohortctl"
export ASSETS_DIR="$web/dist"
export WEB_DIR="$web"
export WORK_DIR="$TEST_TMPDIR"
exec node --test --test-concurrency=1 --test-timeout=180000 "$root/tests/console/console.test.mjs"
