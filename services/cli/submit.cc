// cohortctl submit: one job, optionally waiting for its result.
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/cli/command.h"
#include "services/cli/job_spec_flags.h"

namespace cohort::cli {
namespace {

// Prints a result on stdout as the job produced it, with a final newline if it has none.
void PrintResult(const std::string& result) {
  PrintRaw(result);
  if (!result.empty() && !absl::EndsWith(result, "\n")) PrintRaw("\n");
}

// Waits for the job (Gather with return_exceptions, so a failure is an outcome) and
// prints its result; exit code 1 when it ended FAILED or CANCELLED.
ExitCode AwaitResult(Context& ctx, cohort::v1::Broker::Stub& broker, const std::string& id) {
  cohort::v1::GatherRequest request;
  request.add_job_ids(id);
  request.set_return_exceptions(true);
  cohort::v1::GatherResponse response;
  auto call = ctx.WaitingCall(absl::InfiniteDuration());
  grpc::Status status = broker.Gather(call.get(), request, &response);
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

ExitCode Submit(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags(absl::StrCat("cohortctl submit [flags] ", JobSpecFlags::kArgs),
                "Submits a job and prints its id (with --wait: its result).");
  flags.Inherit(&ctx.global_flags());
  JobSpecFlags job(flags, JobSpecFlags::Use::kSubmit);
  bool wait = false;
  flags.Add("wait", &wait, "wait for the job to end and print its result (exit code 1 if it fails)");
  flags.SetFooter(
      "PAYLOAD is the job's input: the argument itself, @FILE for a file's contents, or - for stdin.\n"
      "ARGV after -- is the command of an \"exec\" job (an absolute path the executor allows).\n"
      "--timeout here is the job's; put the global --timeout before \"submit\".\n"
      "\n"
      "examples:\n"
      "  cohortctl submit default builtin.echo hello --wait\n"
      "  cohortctl submit --priority=10 --label=team=data reports exec @input.json -- /usr/bin/wc -c\n"
      "  cohortctl submit --depends-on=$PARENT --attempts=3 --backoff-initial=1s etl builtin.noop\n");
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 2, 3, &parsed)) return *done;
  absl::StatusOr<cohort::v1::JobSpec> spec = job.Build(flags, parsed.positional, parsed.after_dashes);
  if (!spec.ok()) return FailLocal(spec.status());

  absl::StatusOr<cohort::v1::Broker::Stub*> broker = ctx.Broker();
  if (!broker.ok()) return FailLocal(broker.status());
  cohort::v1::SubmitRequest request;
  *request.add_jobs() = *std::move(spec);
  cohort::v1::SubmitResponse response;
  auto call = ctx.Call();
  grpc::Status status = (*broker)->Submit(call.get(), request, &response);
  if (!status.ok()) return ctx.FailBroker(status);
  if (wait) return AwaitResult(ctx, **broker, response.job_ids(0));
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
