#pragma once

#include <cstddef>

#include "libs/runtime/runtime.h"
#include "services/executor/allowlist.h"
#include "services/executor/executor_metrics.h"
#include "services/executor/job_runner.h"

namespace cohort::executor {

// Settings of the `exec` kind; each is a flag of cohort-executor.
struct ExecOptions {
  runtime::Duration kill_grace = std::chrono::seconds(5);  // SIGTERM -> SIGKILL
  std::size_t max_stdout_bytes = 1 << 20;
  std::size_t max_stderr_bytes = 64 << 10;
  bool inherit_env = false;  // start from the executor's environment
};

// Runs kind "exec": the job's command (argv, env, cwd) as a child process in its own
// process group, the payload on stdin, stdout as the result; a non-zero exit, a
// signal or the timeout is a failure carrying stderr in Error.details. Only commands
// the allowlist admits are started, and only with an environment that sets none of the
// loader and glibc variables of env_denylist.h (LD_PRELOAD, ...); anything else fails
// with code "not_allowed" and nothing runs. The child also gets COHORT_JOB_ID, COHORT_ATTEMPT and the progress fd
// (COHORT_PROGRESS_FD, see progress_lines.h), whose lines go to the ProgressSink.
// Records spawn latency, output bytes and malformed progress lines in `metrics`.
// `allowlist` and `metrics` outlive the runner.
class ExecRunner final : public JobRunner {
 public:
  ExecRunner(runtime::EventLoop& loop, const CommandAllowlist& allowlist, ExecOptions options,
             ExecutorMetrics& metrics)
      : loop_(loop), allowlist_(allowlist), options_(options), metrics_(metrics) {}
  runtime::Task<Outcome> Run(const cohort::v1::Job& job, int attempt, ProgressSink& progress) override;

 private:
  runtime::EventLoop& loop_;
  const CommandAllowlist& allowlist_;
  const ExecOptions options_;
  ExecutorMetrics& metrics_;
};

}  // namespace cohort::executor
