// cohortctl submit: one job, optionally waiting for its result.
#include <algorithm>
#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/cli/command.h"
#include "services/cli/job_spec_flags.h"
#include "services/cli/reconnect.h"

namespace cohort::cli {

namespace {

// Prints a result on stdout as the job produced it, with a final newline if it has none.
void PrintResult(const std::string& result) {
  PrintRaw(result);
  if (!result.empty() && !absl::EndsWith(result, "\n")) PrintRaw("\n");
}

// The state of a job that is still going, for the timeout message ("QUEUED").
std::string StateNow(Context& ctx, cohort::v1::Broker::Stub& broker, const std::string& id) {
  cohort::v1::GetJobRequest request;
  request.set_job_id(id);
  cohort::v1::GetJobResponse response;
  auto call = ctx.Call();
  if (!broker.GetJob(call.get(), request, &response).ok()) return "not ended";
  return StateName(response.job().state());
}

// Waits up to `wait` for the job (Gather with return_exceptions, so a failure is an
// outcome) and prints its result; exit code 1 when it ended FAILED or CANCELLED, or
// when the wait timed out (the job is left as it is).
ExitCode AwaitResult(Context& ctx, cohort::v1::Broker::Stub& broker, const std::string& id, absl::Duration wait) {
  cohort::v1::GatherRequest request;
  request.add_job_ids(id);
  request.set_return_exceptions(true);
  cohort::v1::GatherResponse response;  // the timeout is what is left of `wait` at each call
  grpc::Status status = WaitAcrossFailover(
      ctx, "submit", absl::StrCat("still waiting for ", id), WaitEnd(wait), request, &response,
      [&](grpc::ClientContext* c, const cohort::v1::GatherRequest& r, cohort::v1::GatherResponse* out) {
        return broker.Gather(c, r, out);
      });
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return Fail(ExitCode::kJobFailed, absl::StrCat("job ", id, " did not end within ", FormatAge(wait), ": it is still ",
                                                   StateNow(ctx, broker, id), " (nothing was cancelled)"));
  }
  if (!status.ok()) return ctx.FailBroker(status);
  const cohort::v1::JobOutcome& outcome = response.outcomes(0);
  if (ctx.json()) {
    PrintJson(outcome);
  } else if (outcome.state() == cohort::v1::JOB_STATE_SUCCEEDED) {
    PrintResult(outcome.result());
  }
  if (outcome.state() == cohort::v1::JOB_STATE_SUCCEEDED) return ExitCode::kOk;
  return Fail(ExitCode::kJobFailed, absl::StrCat("job ", id, " ", StateName(outcome.state()), ": ",
                                                 outcome.error().code(), ": ", outcome.error().message()));
}

// Warns on stderr when no connected executor takes jobs of `queue` and `kind` (an
// executor lists the queue or none, and the kind or none): the job would wait,
// silently, until one connects. Best effort: if the listing fails, the submit's own
// outcome is what matters and nothing is said.
void WarnIfUnserved(Context& ctx, cohort::v1::Broker::Stub& broker, const std::string& queue, const std::string& kind) {
  cohort::v1::ListExecutorsResponse response;
  auto call = ctx.Call();
  if (!broker.ListExecutors(call.get(), {}, &response).ok()) return;
  for (const cohort::v1::ExecutorInfo& e : response.executors()) {
    const bool queue_ok = e.queues().empty() || std::find(e.queues().begin(), e.queues().end(), queue) != e.queues().end();
    const bool kind_ok = e.kinds().empty() || std::find(e.kinds().begin(), e.kinds().end(), kind) != e.kinds().end();
    if (queue_ok && kind_ok) return;
  }
  std::fprintf(stderr,
               "cohortctl: warning: no connected executor runs kind \"%s\" from queue \"%s\" (%d connected): the job "
               "waits until one does (see cohortctl executors)\n",
               Excerpt(kind, 64).c_str(), Excerpt(queue, 64).c_str(), response.executors_size());
}

ExitCode Submit(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags(absl::StrCat("cohortctl submit [flags] ", JobSpecFlags::kArgs),
                "Submits a job and prints its id (with --wait: its result).");
  flags.Inherit(&ctx.global_flags());
  JobSpecFlags job(flags, JobSpecFlags::Use::kSubmit);
  bool wait = false;
  flags.Add("wait", &wait, "wait for the job to end and print its result (exit code 1 if it fails)");
  absl::Duration wait_timeout;
  flags.Add("wait-timeout", &wait_timeout,
            "with --wait, stop waiting after this long (exit code 1, the job keeps going; default: the global "
            "--timeout if given before \"submit\", else no limit)");
  flags.SetFooter(
      "PAYLOAD is the job's input: the argument itself, @FILE for a file's contents, or - for stdin.\n"
      "ARGV after -- is the command of an \"exec\" job (an absolute path the executor allows).\n"
      "--timeout here is the job's; put the global --timeout before \"submit\" (it then bounds --wait too).\n"
      "\n"
      "examples:\n"
      "  cohortctl submit default builtin.echo hello --wait\n"
      "  cohortctl submit --priority=10 --label=team=data reports exec @input.json -- /usr/bin/wc -c\n"
      "  cohortctl submit --depends-on=$PARENT --attempts=3 --backoff-initial=1s etl builtin.noop\n");
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 2, 3, &parsed)) return *done;
  absl::StatusOr<cohort::v1::JobSpec> spec = job.Build(flags, parsed.positional, parsed.after_dashes);
  if (!spec.ok()) return FailLocal(spec.status());
  if (flags.IsSet("wait-timeout") && !wait) return Fail(ExitCode::kUsage, "--wait-timeout needs --wait");
  if (flags.IsSet("wait-timeout") && wait_timeout <= absl::ZeroDuration()) {
    return Fail(ExitCode::kUsage, "--wait-timeout must be positive");
  }
  const absl::Duration wait_bound = flags.IsSet("wait-timeout") ? wait_timeout : ctx.DefaultWait();

  absl::StatusOr<cohort::v1::Broker::Stub*> broker = ctx.Broker();
  if (!broker.ok()) return FailLocal(broker.status());
  cohort::v1::SubmitRequest request;
  *request.add_jobs() = *std::move(spec);
  cohort::v1::SubmitResponse response;
  auto call = ctx.Call();
  grpc::Status status = (*broker)->Submit(call.get(), request, &response);
  if (!status.ok()) return ctx.FailBroker(status);
  WarnIfUnserved(ctx, **broker, request.jobs(0).queue(), request.jobs(0).kind());
  if (wait) return AwaitResult(ctx, **broker, response.job_ids(0), wait_bound);
  if (ctx.json()) {
    PrintJson(response);
  } else {
    PrintRaw(absl::StrCat(response.job_ids(0), "\n"));
  }
  return ExitCode::kOk;
}

}  // namespace

std::vector<Command> SubmitCommands() {
  return {{"submit", "submit a job (payload from an argument, @file or stdin); --wait prints its result", Submit}};
}

}  // namespace cohort::cli
