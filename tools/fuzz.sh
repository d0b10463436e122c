#!/usr/bin/env bash
# Builds the libFuzzer targets in //fuzz (clang-14, ASan + UBSan: --config=fuzz) and runs
# each for a bounded time, starting from its seed corpus in fuzz/corpus/<target>/.
#
#   tools/fuzz.sh                 every target, 20 s each
#   tools/fuzz.sh 600             every target, 10 minutes each
#   tools/fuzz.sh 60 cron_expression_fuzz progress_lines_fuzz
#
# The build uses a Bazel output base of its own ($COHORT_FUZZ_OUTPUT_BASE, default
# ~/.cache/cohort-fuzz-bazel) and creates no bazel-* symlinks, so it never touches the
# gcc build tree others use. New inputs libFuzzer finds go to a scratch copy of the
# corpus (the repo's corpus stays small); a crashing input is written to
# $COHORT_FUZZ_ARTIFACTS (default /tmp/cohort-fuzz-artifacts) and named in the output.
# Exits non-zero if any target crashed, leaked or failed to build.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-20}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(submit_request_fuzz connect_message_fuzz schedule_spec_fuzz cron_expression_fuzz progress_lines_fuzz job_batch_codec_fuzz)
fi
output_base=${COHORT_FUZZ_OUTPUT_BASE:-$HOME/.cache/cohort-fuzz-bazel}
artifacts=${COHORT_FUZZ_ARTIFACTS:-/tmp/cohort-fuzz-artifacts}
mkdir -p "$artifacts"

bazel_fuzz() { bazel --output_base="$output_base" --max_idle_secs=300 "$1" --config=ci --config=fuzz --symlink_prefix=/ "${@:2}"; }

labels=()
for t in "${targets[@]}"; do labels+=("//fuzz:$t"); done
echo "== building ${targets[*]} (clang-14, ASan + UBSan)"
if ! bazel_fuzz build "${labels[@]}"; then
  echo "fuzz: build failed"
  exit 1
fi
bin=$(bazel_fuzz info bazel-bin 2>/dev/null)

status=0
summary=()
for t in "${targets[@]}"; do
  scratch=$(mktemp -d)
  cp fuzz/corpus/"$t"/* "$scratch"/ 2>/dev/null || true
  echo "== $t for ${seconds}s"
  # The scratch corpus comes first: libFuzzer adds what it finds to the first directory.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$bin/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/$t-" "$scratch" fuzz/corpus/"$t" >"$scratch.log" 2>&1
  rc=$?
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$scratch.log" | grep -oE '[0-9]+$' || echo "?")
  if [ "$rc" -eq 0 ]; then
    summary+=("$t: ok, $runs runs")
  else
    status=1
    summary+=("$t: FAILED (exit $rc), see below")
    echo "---- $t output (last 60 lines)"
    tail -n 60 "$scratch.log"
    ls "$artifacts"/"$t"-* 2>/dev/null | sed 's/^/crashing input: /'
  fi
  rm -rf "$scratch" "$scratch.log"
done
printf '%s\n' "${summary[@]}"
exit "$status"
