#!/usr/bin/env bash
# Installs what Cohort needs (tools/setup.sh), builds everything and runs every test:
# the whole tree in opt mode (gcc), every gtest's cases shuffled, in one Bazel
# invocation; then the tests of every library, the broker and the
# executor under AddressSanitizer and UndefinedBehaviorSanitizer, built by clang-14 in
# the fuzzers' configuration and output base, so that the fuzzers then reuse those
# compile units (the scheduler's parsers are fuzzed there too; the scheduler's, the
# console's, the CLI's and cohort-dev's tests and executor_app_test run in opt mode only:
# the clean-clone run of 9ec566e took 38.5 min here, 12.7 of them in this phase); the parts
# that use threads of their own under ThreadSanitizer (the runtime, the store's writer
# thread, the executor's process runner, the replication commit merger's hand-off between
# loops, and the thread-using parts of libs/common: the
# log, signals and id generation; not what calls into gRPC: Debian's gRPC is not
# TSan-instrumented, so TSan reports races inside it that are not ours; the broker's
# engine is confined to its loop, and the store thread it talks to is TSan-tested in
# libs/store); and a bounded libFuzzer run of every decoder. Each phase prints its wall
# time (clean clone of 9ec566e on a 2-core machine: opt build and tests 21.8 min, with
# test sources at -O0 (.bazelrc; 29.5 min when they were -O2), ASan/UBSan 12.7, TSan 2.9,
# fuzzing 1.1). Ends with "N passed, N failed" (test targets, from Bazel's
# summary) and exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh || exit 1

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0

phase_start=0  # setup.sh ran since the script started
phase_done() {
  echo "== $1 took $((SECONDS - phase_start)) s (total $SECONDS s)"
  phase_start=$SECONDS
}
phase_done "setup"

# A test holds a slot of its own, not one of the compile's cores (--local_test_jobs), and
# one more action than cores may run: a long cross-process test, mostly waiting on its
# processes, no longer stalls half the compile.
cores=$(nproc)
overlap=(--jobs=$((cores + 1)) --local_test_jobs="$cores")

run() {
  echo "== bazel test $*"
  bazel test --config=ci "${overlap[@]}" "$@" 2>&1 | tee -a "$log" | grep -E '^(//|Executed|ERROR|FAIL:)'
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  phase_done "this phase"
}

# clang-14 with ASan + UBSan (--config=fuzz), in tools/fuzz.sh's output base.
export COHORT_FUZZ_OUTPUT_BASE=${COHORT_FUZZ_OUTPUT_BASE:-$HOME/.cache/cohort-fuzz-bazel}
run_sanitized() {
  echo "== bazel test --config=fuzz $*"
  bazel --output_base="$COHORT_FUZZ_OUTPUT_BASE" --max_idle_secs=300 test --config=ci --config=fuzz \
    --symlink_prefix=/ "${overlap[@]}" "$@" 2>&1 | tee -a "$log" | grep -E '^(//|Executed|ERROR|FAIL:)'
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  phase_done "this phase"
}

# Every gtest runs its cases shuffled (each must stand alone; gtest prints the seed),
# in one invocation, so that compiling and the long cross-process tests overlap.
run --test_env=GTEST_SHUFFLE=1 -- //...
run_sanitized --build_tests_only -- //libs/... //services/broker/... //services/executor/... \
  -//services/executor:executor_app_test
run --config=tsan //libs/runtime/... //libs/store/... //libs/common:log_test \
  //libs/common:signals_test //libs/common:ids_test //services/executor:process_runner_test \
  //libs/replication:commit_merger_test

# libFuzzer over every request decoder and validator, under ASan/UBSan (the output base
# above): a bounded run per target; `bash tools/fuzz.sh 600` for a longer one.
echo "== tools/fuzz.sh 5"
bash tools/fuzz.sh 5 2>&1 | tee -a "$log" | grep -E '^(== |[a-z_]+_fuzz: |fuzz: |crashing input: )'
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
phase_done "fuzzing"

passed=$(grep -cE '^//[^ ]+ +(\(cached\) )?PASSED' "$log")
failed=$(grep -cE '^//[^ ]+ +.*(FAILED|TIMEOUT|NO STATUS|INCOMPLETE)' "$log")
# A failure before any test ran (analysis, build) still counts.
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$passed passed, $failed failed"
exit "$status"
