// cohortctl gather, wait, wait-for and as-completed: asyncio's waits, as the broker
// serves them (see broker.proto). Waiting happens on the broker; these commands block
// in one call each, with a progress bar fed by an AsCompleted stream when a person
// watches.
#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "libs/common/job_states.h"
#include "libs/common/proto_time.h"
#include "services/cli/command.h"
#include "services/cli/input.h"
#include "services/cli/progress.h"
#include "services/cli/reconnect.h"

namespace cohort::cli {

using common::ToProto;

namespace {

using cohort::v1::JobOutcome;

bool Raised(const JobOutcome& outcome) { return common::EndedWithError(outcome.state()); }

// A waiting command's --timeout: the request's timeout when given, else the global
// --timeout when that was given (Context::DefaultWait), else as long as it takes.
class WaitTimeout {
 public:
  WaitTimeout(Context& ctx, FlagSet& flags) : ctx_(ctx), flags_(flags) {
    flags.Add("timeout", &value_,
              "give up waiting after this long, e.g. 30s (default: the global --timeout if given before the "
              "command, else wait as long as it takes)");
  }

  // Sets the request's timeout, if there is one.
  template <typename Request>
  void SetOn(Request* request) const {
    if (bound() != absl::InfiniteDuration()) *request->mutable_timeout() = ToProto(bound());
  }
  // How long the call may wait: for Context::WaitingCall.
  absl::Duration bound() const { return flags_.IsSet("timeout") ? value_ : ctx_.DefaultWait(); }
  std::string Text() const { return FormatAge(bound()); }

 private:
  const Context& ctx_;
  const FlagSet& flags_;
  absl::Duration value_;
};

ExitCode Gather(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags("cohortctl gather [flags] JOB_ID... (- reads ids from stdin)",
                "Waits for every job and prints their outcomes in the order given (asyncio.gather).");
  flags.Inherit(&ctx.global_flags());
  bool return_exceptions = false;
  flags.Add("return-exceptions", &return_exceptions,
            "list failed and cancelled jobs with the others instead of stopping at the first (exit code 0)");
  WaitTimeout timeout(ctx, flags);
  flags.SetFooter(
      "Without --return-exceptions the first job to fail ends the command with exit code 1 (the other jobs\n"
      "keep running). A timeout is exit code 1 too, and cancels nothing.\n");
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 1, SIZE_MAX, &parsed)) return *done;
  absl::StatusOr<std::vector<std::string>> ids = ReadJobIdArgs(parsed.positional);
  if (!ids.ok()) return FailLocal(ids.status());
  absl::StatusOr<cohort::v1::Broker::Stub*> broker = ctx.Broker();
  if (!broker.ok()) return FailLocal(broker.status());

  cohort::v1::GatherRequest request;
  for (const std::string& id : *ids) request.add_job_ids(id);
  request.set_return_exceptions(return_exceptions);
  timeout.SetOn(&request);
  cohort::v1::GatherResponse response;
  grpc::Status status;
  {
    CompletionProgress progress(**broker, *ids);
    status = WaitAcrossFailover(ctx, "gather", absl::StrCat("still waiting for ", ids->size(), " job(s)"),
                                WaitEnd(timeout.bound()), request, &response,
                                [&](grpc::ClientContext* call, const auto& r, auto* out) {
                                  return (*broker)->Gather(call, r, out);
                                });
  }
  if (status.error_code() == grpc::StatusCode::ABORTED) return Fail(ExitCode::kJobFailed, status.error_message());
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return Fail(ExitCode::kJobFailed,
                absl::StrCat("gather timed out after ", timeout.Text(), " (nothing was cancelled)"));
  }
  if (!status.ok()) return ctx.FailBroker(status);
  if (ctx.json()) {
    PrintJson(response);
    return ExitCode::kOk;
  }
  Table table({"JOB", "STATE", "RESULT"});
  for (const JobOutcome& o : response.outcomes()) table.AddRow({o.job_id(), StateName(o.state()), OutcomeText(o)});
  table.Print();
  return ExitCode::kOk;
}

// Whether a Wait reply satisfies return_when, i.e. it did not end by timeout.
bool Satisfied(const cohort::v1::WaitResponse& response, cohort::v1::ReturnWhen when) {
  if (response.pending().empty()) return true;
  switch (when) {
    case cohort::v1::RETURN_WHEN_FIRST_COMPLETED:
      return !response.done().empty();
    case cohort::v1::RETURN_WHEN_FIRST_EXCEPTION:
      for (const JobOutcome& o : response.done()) {
        if (o.state() == cohort::v1::JOB_STATE_FAILED) return true;
      }
      return false;
    default:
      return false;
  }
}

ExitCode Wait(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags("cohortctl wait [flags] JOB_ID... (- reads ids from stdin)",
                "Waits until a condition holds and prints the jobs done and still pending (asyncio.wait).");
  flags.Inherit(&ctx.global_flags());
  std::string return_when = "all-completed";
  flags.Add("return-when", &return_when, "first-completed, first-exception or all-completed", "WHEN");
  WaitTimeout timeout(ctx, flags);
  flags.SetFooter(
      "Never cancels anything. Exit code 0 when the condition held (whatever the jobs' states), 1 when the\n"
      "timeout passed first.\n");
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 1, SIZE_MAX, &parsed)) return *done;
  absl::StatusOr<cohort::v1::ReturnWhen> when = ParseChoice<cohort::v1::ReturnWhen>(
      "return-when", return_when,
      {{"first-completed", cohort::v1::RETURN_WHEN_FIRST_COMPLETED},
       {"first-exception", cohort::v1::RETURN_WHEN_FIRST_EXCEPTION},
       {"all-completed", cohort::v1::RETURN_WHEN_ALL_COMPLETED}});
  if (!when.ok()) return FailLocal(when.status());
  absl::StatusOr<std::vector<std::string>> ids = ReadJobIdArgs(parsed.positional);
  if (!ids.ok()) return FailLocal(ids.status());
  absl::StatusOr<cohort::v1::Broker::Stub*> broker = ctx.Broker();
  if (!broker.ok()) return FailLocal(broker.status());

  cohort::v1::WaitRequest request;
  for (const std::string& id : *ids) request.add_job_ids(id);
  request.set_return_when(*when);
  timeout.SetOn(&request);
  cohort::v1::WaitResponse response;
  grpc::Status status;
  {
    CompletionProgress progress(**broker, *ids);
    status = WaitAcrossFailover(ctx, "wait", absl::StrCat("still waiting for ", ids->size(), " job(s)"),
                                WaitEnd(timeout.bound()), request, &response,
                                [&](grpc::ClientContext* call, const auto& r, auto* out) {
                                  return (*broker)->Wait(call, r, out);
                                });
  }
  if (!status.ok()) return ctx.FailBroker(status);
  if (ctx.json()) {
    PrintJson(response);
  } else {
    Table table({"JOB", "STATE", "RESULT"});
    for (const JobOutcome& o : response.done()) table.AddRow({o.job_id(), StateName(o.state()), OutcomeText(o)});
    for (const std::string& id : response.pending()) table.AddRow({id, "(not done)", ""});
    table.Print();
  }
  if (Satisfied(response, *when)) return ExitCode::kOk;
  return Fail(ExitCode::kJobFailed, absl::StrCat("wait timed out after ", timeout.Text(), ": ",
                                                 response.pending_size(), " job(s) not done"));
}

// Says what became of a job whose wait-for timed out: cancelled, told to stop, or
// left alone because it (or the request) is shielded.
std::string AfterTimeout(Context& ctx, cohort::v1::Broker::Stub& broker, const std::string& id, bool shield) {
  if (shield) return "left running (--shield)";
  cohort::v1::GetJobRequest request;
  request.set_job_id(id);
  cohort::v1::GetJobResponse response;
  auto call = ctx.Call();
  if (!broker.GetJob(call.get(), request, &response).ok()) return "cancelled unless shielded";
  const cohort::v1::Job& job = response.job();
  if (job.state() == cohort::v1::JOB_STATE_CANCELLED) return "cancelled";
  if (job.cancel_requested()) return "cancel requested, its executor was told to stop";
  return absl::StrCat("left ", StateName(job.state()), " (the job is shielded)");
}

ExitCode WaitFor(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags("cohortctl wait-for [flags] JOB_ID",
                "Waits for one job and prints its result (asyncio.wait_for): on timeout the job is cancelled.");
  flags.Inherit(&ctx.global_flags());
  WaitTimeout timeout(ctx, flags);
  bool shield = false;
  flags.Add("shield", &shield, "on timeout, leave the job running (asyncio.shield)");
  flags.SetFooter("Exit code 1 when the job fails or is cancelled, or the timeout passes.\n");
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 1, 1, &parsed)) return *done;
  absl::StatusOr<cohort::v1::Broker::Stub*> broker = ctx.Broker();
  if (!broker.ok()) return FailLocal(broker.status());

  cohort::v1::WaitForRequest request;
  request.set_job_id(parsed.positional[0]);
  request.set_shield(shield);
  cohort::v1::WaitForResponse response;
  // A broker restart or failover ends the call UNAVAILABLE and never cancels the job:
  // wait again, for what is left of the timeout.
  const grpc::Status status = WaitAcrossFailover(
      ctx, "wait-for", absl::StrCat("still waiting for ", request.job_id()), WaitEnd(timeout.bound()), request,
      &response, [&](grpc::ClientContext* call, const auto& r, auto* out) { return (*broker)->WaitFor(call, r, out); });
  if (status.error_code() == grpc::StatusCode::ABORTED) return Fail(ExitCode::kJobFailed, status.error_message());
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return Fail(ExitCode::kJobFailed,
                absl::StrCat("job ", request.job_id(), " did not end within ", timeout.Text(), ": ",
                             AfterTimeout(ctx, **broker, request.job_id(), shield)));
  }
  if (!status.ok()) return ctx.FailBroker(status);
  if (ctx.json()) {
    PrintJson(response);
  } else {
    PrintRaw(response.result());
    if (!response.result().empty() && !absl::EndsWith(response.result(), "\n")) PrintRaw("\n");
  }
  return ExitCode::kOk;
}

ExitCode AsCompleted(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags("cohortctl as-completed [flags] JOB_ID... (- reads ids from stdin)",
                "Prints each job as it ends, earliest first (asyncio.as_completed).");
  flags.Inherit(&ctx.global_flags());
  WaitTimeout timeout(ctx, flags);
  flags.SetFooter(
      "With --output=json, each job is one AsCompletedResponse object on its own line.\n"
      "Exit code 1 when a job failed or was cancelled, or the timeout passed.\n");
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 1, SIZE_MAX, &parsed)) return *done;
  absl::StatusOr<std::vector<std::string>> ids = ReadJobIdArgs(parsed.positional);
  if (!ids.ok()) return FailLocal(ids.status());
  absl::StatusOr<cohort::v1::Broker::Stub*> broker = ctx.Broker();
  if (!broker.ok()) return FailLocal(broker.status());

  // The jobs not yet printed: a broker restart or failover ends the stream UNAVAILABLE,
  // and the next one asks for these, for what is left of the timeout.
  std::set<std::string> left(ids->begin(), ids->end());
  const std::size_t total = left.size();
  const absl::Time end = WaitEnd(timeout.bound());
  Reconnect reconnect("as-completed");
  ProgressBar bar(total);
  constexpr char kRow[] = "%-24s  %-9s  %s\n";
  if (!ctx.json()) PrintRaw(absl::StrFormat(kRow, "JOB", "STATE", "RESULT"));
  std::size_t done = 0;
  std::size_t raised = 0;
  grpc::Status status;
  while (true) {
    cohort::v1::AsCompletedRequest request;
    for (const std::string& id : left) request.add_job_ids(id);
    const absl::Duration wait =
        end == absl::InfiniteFuture() ? absl::InfiniteDuration() : std::max(end - absl::Now(), absl::Milliseconds(1));
    if (end != absl::InfiniteFuture()) *request.mutable_timeout() = ToProto(wait);
    auto call = ctx.WaitingCall(wait);
    std::unique_ptr<grpc::ClientReader<cohort::v1::AsCompletedResponse>> stream =
        (*broker)->AsCompleted(call.get(), request);
    cohort::v1::AsCompletedResponse response;
    while (stream->Read(&response)) {
      reconnect.Connected();
      const JobOutcome& o = response.outcome();
      if (left.erase(o.job_id()) == 0) continue;
      ++done;
      if (Raised(o)) ++raised;
      bar.Erase();
      if (ctx.json()) {
        PrintJson(response);
      } else {
        PrintRaw(absl::StrFormat(kRow, o.job_id(), StateName(o.state()), OutcomeText(o)));
      }
      bar.Advance();
    }
    status = stream->Finish();
    if (left.empty() || !Reconnect::Retryable(status) || absl::Now() >= end) break;
    reconnect.Wait(status, ctx.options().server, absl::StrCat("still waiting for ", left.size(), " job(s)"));
  }
  bar.Erase();
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return Fail(ExitCode::kJobFailed,
                absl::StrCat("as-completed timed out after ", timeout.Text(), ": ", done, " of ", total,
                             " job(s) ended"));
  }
  if (!status.ok()) return ctx.FailBroker(status);
  if (raised > 0) {
    return Fail(ExitCode::kJobFailed, absl::StrCat(raised, " of ", total, " job(s) ended FAILED or CANCELLED"));
  }
  return ExitCode::kOk;
}

}  // namespace

std::vector<Command> WaitCommands() {
  return {
      {"gather", "wait for jobs and print their outcomes in order (--return-exceptions)", Gather},
      {"wait", "wait until first-completed, first-exception or all-completed (--timeout)", Wait},
      {"wait-for", "wait for one job's result; on --timeout cancel it (unless --shield)", WaitFor},
      {"as-completed", "print jobs as they end, earliest first", AsCompleted},
  };
}

}  // namespace cohort::cli
