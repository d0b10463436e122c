// cohortctl retry, delete, purge and bulk: operating on jobs after the fact (Sidekiq's
// retry and dead sets, BullMQ's retryJobs/clean, Temporal's batch operations), over
// the broker's RetryJob, DeleteJob and bulk operation RPCs (broker.proto).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <iostream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/cli/command.h"
#include "services/cli/job_filter_flags.h"
#include "services/cli/progress.h"

namespace cohort::cli {
namespace {

using cohort::v1::BulkAction;
using cohort::v1::BulkOperation;

// How often a running bulk operation's progress is read (GetBulkOperation).
constexpr absl::Duration kProgressInterval = absl::Milliseconds(200);

ExitCode Retry(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags("cohortctl retry [flags] JOB_ID",
                "Runs a FAILED or CANCELLED job again: same id, a new budget of attempts, earlier attempts kept.");
  flags.Inherit(&ctx.global_flags());
  int expected_attempt = 0;
  flags.Add("expected-attempt", &expected_attempt,
            "retry only if the job's attempt number is still this (0: whatever it is)");
  flags.SetFooter("A job already queued or running again is left alone (exit code 0, and it says so).\n");
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 1, 1, &parsed)) return *done;
  if (expected_attempt < 0) return Fail(ExitCode::kUsage, "--expected-attempt must not be negative");
  absl::StatusOr<cohort::v1::Broker::Stub*> broker = ctx.Broker();
  if (!broker.ok()) return FailLocal(broker.status());
  cohort::v1::RetryJobRequest request;
  request.set_job_id(parsed.positional[0]);
  request.set_expected_attempt(expected_attempt);
  cohort::v1::RetryJobResponse response;
  auto call = ctx.Call();
  grpc::Status status = (*broker)->RetryJob(call.get(), request, &response);
  if (!status.ok()) return ctx.FailBroker(status);
  if (ctx.json()) {
    PrintJson(response);
  } else if (response.retried()) {
    PrintRaw(absl::StrCat(request.job_id(), " retried: ", StateName(response.job().state()), "\n"));
  } else {
    PrintRaw(absl::StrCat(request.job_id(), " not retried: it is ", StateName(response.job().state()),
                          expected_attempt > 0 ? absl::StrCat(", attempt ", response.job().attempt()) : "", "\n"));
  }
  return ExitCode::kOk;
}

ExitCode Delete(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags("cohortctl delete [flags] JOB_ID",
                "Deletes a job and its record for good (a running job must be cancelled first).");
  flags.Inherit(&ctx.global_flags());
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 1, 1, &parsed)) return *done;
  absl::StatusOr<cohort::v1::Broker::Stub*> broker = ctx.Broker();
  if (!broker.ok()) return FailLocal(broker.status());
  cohort::v1::DeleteJobRequest request;
  request.set_job_id(parsed.positional[0]);
  cohort::v1::DeleteJobResponse response;
  auto call = ctx.Call();
  grpc::Status status = (*broker)->DeleteJob(call.get(), request, &response);
  if (!status.ok()) return ctx.FailBroker(status);
  if (ctx.json()) {
    PrintJson(response);
  } else {
    PrintRaw(absl::StrCat(request.job_id(), " deleted (it was ", StateName(response.state()), ")\n"));
  }
  return ExitCode::kOk;
}

std::string ActionName(BulkAction action) {
  switch (action) {
    case cohort::v1::BULK_ACTION_CANCEL: return "cancel";
    case cohort::v1::BULK_ACTION_RETRY: return "retry";
    case cohort::v1::BULK_ACTION_DELETE: return "delete";
    default: return "?";
  }
}

std::string Summary(const BulkOperation& op) {
  return absl::StrCat(op.id(), " ", ActionName(op.action()), " ",
                      op.state() == BulkOperation::STATE_DONE ? "done" : "running", ": ", op.matched(),
                      " matched, ", op.changed(), " changed, ", op.skipped(), " skipped",
                      op.resumed() > 0 ? absl::StrCat(", resumed after ", op.resumed(), " broker restart(s)") : "");
}

// Asks on the terminal; true for "y" or "yes".
bool Confirm(const std::string& question) {
  std::fprintf(stderr, "%s [y/N] ", question.c_str());
  std::fflush(stderr);
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  answer = absl::AsciiStrToLower(absl::StripAsciiWhitespace(answer));
  return answer == "y" || answer == "yes";
}

// Reads the operation until it is DONE (or `wait` runs out), drawing progress on a
// terminal; prints the final summary (JSON: the BulkOperation).
ExitCode FollowOperation(Context& ctx, cohort::v1::Broker::Stub& broker, BulkOperation op) {
  const absl::Time end = ctx.DefaultWait() == absl::InfiniteDuration() ? absl::InfiniteFuture()
                                                                       : absl::Now() + ctx.DefaultWait();
  std::unique_ptr<ProgressBar> bar;
  int64_t shown = 0;
  while (op.state() != BulkOperation::STATE_DONE) {
    if (bar == nullptr && op.matched() > 0) bar = std::make_unique<ProgressBar>(static_cast<std::size_t>(op.matched()));
    if (absl::Now() >= end) {
      bar.reset();
      return Fail(ExitCode::kJobFailed, absl::StrCat("stopped following ", Summary(op),
                                                     " (it carries on: cohortctl bulk status ", op.id(), ")"));
    }
    absl::SleepFor(kProgressInterval);
    cohort::v1::GetBulkOperationRequest request;
    request.set_id(op.id());
    cohort::v1::GetBulkOperationResponse response;
    auto call = ctx.Call();
    grpc::Status status = broker.GetBulkOperation(call.get(), request, &response);
    if (!status.ok()) {
      bar.reset();
      return ctx.FailBroker(status);
    }
    op = response.operation();
    if (bar != nullptr && op.changed() + op.skipped() > shown) {
      bar->Advance(static_cast<std::size_t>(op.changed() + op.skipped() - shown));
      shown = op.changed() + op.skipped();
    }
  }
  bar.reset();
  if (ctx.json()) {
    PrintJson(op);
  } else {
    PrintRaw(absl::StrCat(Summary(op), "\n"));
  }
  return ExitCode::kOk;
}

// bulk cancel|retry|delete, and purge (= bulk delete).
ExitCode Bulk(Context& ctx, BulkAction action, const std::string& usage, absl::Span<const std::string> args) {
  FlagSet flags(absl::StrCat(usage, " [flags]"),
                absl::StrCat("Applies ", ActionName(action),
                             " to every job that matches the filter flags, in bounded batches, and shows progress."));
  flags.Inherit(&ctx.global_flags());
  JobFilterFlags filter_flags(flags);
  bool dry_run = false;
  bool yes = false;
  bool all = false;
  bool detach = false;
  std::string request_id;
  flags.Add("dry-run", &dry_run, "only count the jobs that match now; change nothing");
  flags.Add("yes", &yes, "do not ask for confirmation (needed when stdin is not a terminal)");
  flags.Add("all", &all, "with no filter flag, act on every job (refused otherwise)");
  flags.Add("detach", &detach, "print the operation's id and return at once (see: cohortctl bulk status ID)");
  flags.Add("request-id", &request_id, "idempotency key: repeating it returns the first operation", "ID");
  flags.SetFooter(
      "The broker records the operation durably and finishes it across restarts. Jobs the action does not\n"
      "apply to (a running job for delete, a succeeded job for retry) are counted as skipped.\n"
      "examples:\n"
      "  cohortctl bulk retry --state=failed --label='team=data' --dry-run\n"
      "  cohortctl bulk cancel --queue=reports --state=queued --yes\n"
      "  cohortctl purge --state=succeeded,failed --until=24h\n");
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 0, 0, &parsed)) return *done;
  absl::StatusOr<cohort::v1::JobFilter> filter = filter_flags.Build(flags);
  if (!filter.ok()) return FailLocal(filter.status());
  if (!all && !JobFilterFlags::AnyGiven(flags)) {
    return Fail(ExitCode::kUsage, "no filter flag given: give --state, --queue, --kind, --label, --since, --until, "
                                  "--finished-since, --finished-until or --error-code, or --all to act on every job");
  }
  absl::StatusOr<cohort::v1::Broker::Stub*> broker = ctx.Broker();
  if (!broker.ok()) return FailLocal(broker.status());

  cohort::v1::StartBulkOperationRequest request;
  request.set_action(action);
  *request.mutable_filter() = *filter;
  request.set_match_all(all && !JobFilterFlags::AnyGiven(flags));
  request.set_request_id(request_id);
  const bool terminal = isatty(STDIN_FILENO) == 1;
  if (dry_run || (!yes && terminal)) {
    request.set_dry_run(true);
    cohort::v1::StartBulkOperationResponse counted;
    auto call = ctx.Call();
    grpc::Status status = (*broker)->StartBulkOperation(call.get(), request, &counted);
    if (!status.ok()) return ctx.FailBroker(status);
    if (dry_run) {
      if (ctx.json()) {
        PrintJson(counted.operation());
      } else {
        PrintRaw(absl::StrCat(counted.operation().matched(), " job(s) match: ", ActionName(action),
                              " would apply to them (dry run: nothing changed)\n"));
      }
      return ExitCode::kOk;
    }
    if (!Confirm(absl::StrCat(ActionName(action), " ", counted.operation().matched(), " job(s) that match now?"))) {
      return Fail(ExitCode::kUsage, "not confirmed: nothing changed");
    }
    request.set_dry_run(false);
  } else if (!yes) {
    return Fail(ExitCode::kUsage, "stdin is not a terminal, so cohortctl cannot ask: add --yes (or --dry-run to count)");
  }
  cohort::v1::StartBulkOperationResponse started;
  auto call = ctx.Call();
  grpc::Status status = (*broker)->StartBulkOperation(call.get(), request, &started);
  if (!status.ok()) return ctx.FailBroker(status);
  if (detach) {
    if (ctx.json()) {
      PrintJson(started.operation());
    } else {
      PrintRaw(absl::StrCat(started.operation().id(), "\n"));
    }
    return ExitCode::kOk;
  }
  return FollowOperation(ctx, **broker, started.operation());
}

ExitCode BulkStatus(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags("cohortctl bulk status [flags] ID", "Shows a bulk operation's progress.");
  flags.Inherit(&ctx.global_flags());
  bool follow = false;
  flags.Add("follow", &follow, "wait until it is done, showing progress");
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 1, 1, &parsed)) return *done;
  absl::StatusOr<cohort::v1::Broker::Stub*> broker = ctx.Broker();
  if (!broker.ok()) return FailLocal(broker.status());
  cohort::v1::GetBulkOperationRequest request;
  request.set_id(parsed.positional[0]);
  cohort::v1::GetBulkOperationResponse response;
  auto call = ctx.Call();
  grpc::Status status = (*broker)->GetBulkOperation(call.get(), request, &response);
  if (!status.ok()) return ctx.FailBroker(status);
  if (follow) return FollowOperation(ctx, **broker, response.operation());
  if (ctx.json()) {
    PrintJson(response);
  } else {
    PrintRaw(absl::StrCat(Summary(response.operation()), "\n"));
  }
  return ExitCode::kOk;
}

ExitCode BulkList(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags("cohortctl bulk ls [flags]", "Lists the bulk operations the broker keeps, newest first.");
  flags.Inherit(&ctx.global_flags());
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 0, 0, &parsed)) return *done;
  absl::StatusOr<cohort::v1::Broker::Stub*> broker = ctx.Broker();
  if (!broker.ok()) return FailLocal(broker.status());
  cohort::v1::ListBulkOperationsResponse response;
  auto call = ctx.Call();
  grpc::Status status = (*broker)->ListBulkOperations(call.get(), {}, &response);
  if (!status.ok()) return ctx.FailBroker(status);
  if (ctx.json()) {
    PrintJson(response);
    return ExitCode::kOk;
  }
  const absl::Time now = absl::Now();
  Table table({"ID", "ACTION", "STATE", "MATCHED", "CHANGED", "SKIPPED", "STARTED"});
  for (const BulkOperation& op : response.operations()) {
    table.AddRow({op.id(), ActionName(op.action()), op.state() == BulkOperation::STATE_DONE ? "done" : "running",
                  absl::StrCat(op.matched()), absl::StrCat(op.changed()), absl::StrCat(op.skipped()),
                  FormatAgo(op.create_time(), op.has_create_time(), now)});
  }
  table.Print();
  return ExitCode::kOk;
}

constexpr char kBulkCommands[] =
    "commands:\n"
    "  cohortctl bulk cancel|retry|delete [filter flags]   act on every matching job (--dry-run counts)\n"
    "  cohortctl bulk status ID                            an operation's progress (--follow)\n"
    "  cohortctl bulk ls                                   the operations the broker keeps\n";

ExitCode BulkCommand(Context& ctx, absl::Span<const std::string> args) {
  const std::string sub = args.empty() ? "" : args[0];
  if (sub == "cancel") return Bulk(ctx, cohort::v1::BULK_ACTION_CANCEL, "cohortctl bulk cancel", args.subspan(1));
  if (sub == "retry") return Bulk(ctx, cohort::v1::BULK_ACTION_RETRY, "cohortctl bulk retry", args.subspan(1));
  if (sub == "delete") return Bulk(ctx, cohort::v1::BULK_ACTION_DELETE, "cohortctl bulk delete", args.subspan(1));
  if (sub == "status") return BulkStatus(ctx, args.subspan(1));
  if (sub == "ls" || sub == "list") return BulkList(ctx, args.subspan(1));
  if (sub == "--help" || sub == "-h" || sub.empty()) {
    PrintRaw(absl::StrCat("usage: cohortctl bulk COMMAND [flags]\n\n", kBulkCommands));
    return sub.empty() ? Fail(ExitCode::kUsage, "bulk needs a command (see above)") : ExitCode::kOk;
  }
  return Fail(ExitCode::kUsage, absl::StrCat("unknown bulk command \"", Excerpt(sub, 40), "\" (see cohortctl bulk --help)"));
}

ExitCode Purge(Context& ctx, absl::Span<const std::string> args) {
  return Bulk(ctx, cohort::v1::BULK_ACTION_DELETE, "cohortctl purge", args);
}

}  // namespace

std::vector<Command> OperationCommands() {
  return {
      {"retry", "run a failed or cancelled job again (its attempts kept)", Retry},
      {"delete", "delete a job for good", Delete},
      {"purge", "delete every job that matches filter flags (bulk delete)", Purge},
      {"bulk", "cancel, retry or delete every job that matches a filter; bulk status ID; bulk ls", BulkCommand,
       "cancel retry delete status ls"},
  };
}

}  // namespace cohort::cli
