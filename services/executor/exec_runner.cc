#include "services/executor/exec_runner.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "libs/common/wire_time.h"
#include "services/executor/env_denylist.h"
#include "services/executor/process_runner.h"

namespace cohort::executor {
namespace {

std::string Truncated(std::string data, bool truncated, std::size_t cap) {
  if (truncated) absl::StrAppend(&data, "\n[cohort: output truncated at ", cap, " bytes]");
  return data;
}

}  // namespace

runtime::Task<Outcome> ExecRunner::Run(const cohort::v1::Job& job, int attempt, ProgressSink& progress) {
  const cohort::v1::Command& command = job.spec().command();
  std::vector<std::string> argv(command.argv().begin(), command.argv().end());
  if (absl::Status allowed = allowlist_.Check(argv); !allowed.ok()) {
    co_return Outcome::Failure("not_allowed", std::string(allowed.message()));
  }
  ProcessSpec spec;
  spec.argv = std::move(argv);
  for (const auto& [k, v] : command.env()) spec.env[k] = v;
  if (absl::Status allowed = CheckJobEnv(spec.env); !allowed.ok()) {
    co_return Outcome::Failure("not_allowed", std::string(allowed.message()));
  }
  spec.env["COHORT_JOB_ID"] = job.id();
  spec.env["COHORT_ATTEMPT"] = std::to_string(attempt);
  spec.inherit_env = options_.inherit_env;
  spec.cwd = command.cwd();
  spec.stdin_data = job.spec().payload();
  if (job.spec().has_timeout()) {
    // The broker range-checks it at Submit; an older broker may not have: any
    // well-formed length is taken, saturating, and a malformed one starts nothing.
    absl::StatusOr<absl::Duration> timeout =
        common::DurationFromWire(job.spec().timeout(), "spec.timeout", absl::InfiniteDuration());
    if (!timeout.ok()) co_return Outcome::Failure("spawn_failed", std::string(timeout.status().message()));
    spec.timeout = common::ToChronoSaturated(*timeout);
  }
  spec.kill_grace = options_.kill_grace;
  spec.max_stdout_bytes = options_.max_stdout_bytes;
  spec.max_stderr_bytes = options_.max_stderr_bytes;
  spec.on_progress = [&progress](ProgressLine line) { progress.Report(line.fraction, std::move(line.message)); };
  spec.on_started = [this](runtime::Duration latency) {
    metrics_.ChildSpawned(std::chrono::duration<double>(latency).count());
  };

  absl::StatusOr<ProcessResult> r = co_await RunProcess(loop_, std::move(spec));
  if (!r.ok()) co_return Outcome::Failure("spawn_failed", std::string(r.status().message()));
  metrics_.ChildOutput(r->stdout_bytes, r->stderr_bytes);
  metrics_.ProgressMalformed(r->malformed_progress_lines);
  if (r->cancelled) throw runtime::CancelledError();  // stopped and reaped: report as cancelled
  std::string stderr_text = Truncated(std::move(r->stderr_data), r->stderr_truncated, options_.max_stderr_bytes);
  if (r->timed_out) co_return Outcome::Failure("timeout", r->Describe(), std::move(stderr_text));
  if (r->Succeeded()) {
    co_return Outcome::Success(Truncated(std::move(r->stdout_data), r->stdout_truncated, options_.max_stdout_bytes));
  }
  co_return Outcome::Failure(r->exit_code ? "exit_status" : "signal", r->Describe(), std::move(stderr_text));
}

}  // namespace cohort::executor
