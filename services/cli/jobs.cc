// cohortctl get, ls, cancel and watch: looking at jobs and their events.
#include <algorithm>
#include <cstdint>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/common/proto_time.h"
#include "services/cli/command.h"
#include "services/cli/job_filter_flags.h"
#include "services/cli/reconnect.h"

namespace cohort::cli {

using common::FromProto;

namespace {

using cohort::v1::Job;

std::string ReasonName(cohort::v1::TransitionReason reason) {
  std::string name = cohort::v1::TransitionReason_Name(reason);
  constexpr absl::string_view kPrefix = "TRANSITION_REASON_";
  return name.size() > kPrefix.size() ? name.substr(kPrefix.size()) : absl::StrCat(static_cast<int>(reason));
}

std::string BytesText(const std::string& bytes) {
  return absl::StrCat(bytes.size(), " bytes", bytes.empty() ? "" : absl::StrCat(": \"", Excerpt(bytes, 60), "\""));
}

// `unserved`: GetJobResponse.unserved, the job is QUEUED and no connected executor of
// its queue runs its kind.
void PrintJob(const Job& job, bool unserved) {
  const cohort::v1::JobSpec& spec = job.spec();
  Table table;
  table.AddRow({"id", job.id()});
  const bool stopping = job.cancel_requested() && job.state() == cohort::v1::JOB_STATE_RUNNING;
  table.AddRow({"state", absl::StrCat(StateName(job.state()), stopping ? " (cancel requested)" : "",
                                      unserved ? " (no connected executor runs its kind: see cohortctl executors)"
                                               : "")});
  table.AddRow({"queue", spec.queue()});
  table.AddRow({"kind", spec.kind()});
  if (spec.has_command()) table.AddRow({"command", Excerpt(absl::StrJoin(spec.command().argv(), " "), 80)});
  table.AddRow({"priority", absl::StrCat(spec.priority())});
  table.AddRow({"attempt", absl::StrCat(job.attempt(), " of ", std::max(spec.max_attempts(), 1))});
  if (!job.executor_id().empty()) table.AddRow({"executor", job.executor_id()});
  if (!spec.labels().empty()) {
    std::vector<std::string> labels;
    for (const auto& [k, v] : spec.labels()) labels.push_back(absl::StrCat(k, "=", v));
    std::sort(labels.begin(), labels.end());
    table.AddRow({"labels", absl::StrJoin(labels, ", ")});
  }
  if (!spec.depends_on().empty()) table.AddRow({"depends on", absl::StrJoin(spec.depends_on(), ", ")});
  table.AddRow({"created", FormatTime(job.create_time(), job.has_create_time())});
  if (job.has_not_before()) table.AddRow({"not before", FormatTime(job.not_before(), true)});
  if (job.has_queue_time()) table.AddRow({"queued", FormatTime(job.queue_time(), true)});
  if (job.has_start_time()) table.AddRow({"started", FormatTime(job.start_time(), true)});
  if (job.has_end_time()) table.AddRow({"ended", FormatTime(job.end_time(), true)});
  if (job.has_expire_time()) table.AddRow({"expires", FormatTime(job.expire_time(), true)});
  if (job.has_progress()) {
    table.AddRow({"progress", absl::StrFormat("%.0f%% %s", job.progress().fraction() * 100,
                                              Excerpt(job.progress().message(), 60))});
  }
  table.AddRow({"payload", BytesText(spec.payload())});
  if (job.has_result()) table.AddRow({"result", BytesText(job.result())});
  if (job.has_error()) {
    table.AddRow({"error", Excerpt(absl::StrCat(job.error().code(), ": ", job.error().message()), 100)});
    if (!job.error().details().empty()) table.AddRow({"details", Excerpt(job.error().details(), 100)});
  }
  for (const cohort::v1::Attempt& a : job.attempts()) {
    std::string text = absl::StrCat(a.executor_id(), ", started ", FormatTime(a.start_time(), a.has_start_time()));
    if (a.has_end_time()) absl::StrAppend(&text, ", ended ", FormatTime(a.end_time(), true));
    if (a.has_error()) absl::StrAppend(&text, ", ", a.error().code(), ": ", Excerpt(a.error().message(), 60));
    table.AddRow({absl::StrCat("attempt ", a.number()), text});
  }
  table.Print();
}

ExitCode Get(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags("cohortctl get [flags] JOB_ID", "Shows one job: its spec, state, times, attempts and outcome.");
  flags.Inherit(&ctx.global_flags());
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 1, 1, &parsed)) return *done;
  absl::StatusOr<cohort::v1::Broker::Stub*> broker = ctx.Broker();
  if (!broker.ok()) return FailLocal(broker.status());
  cohort::v1::GetJobRequest request;
  request.set_job_id(parsed.positional[0]);
  cohort::v1::GetJobResponse response;
  auto call = ctx.Call();
  grpc::Status status = (*broker)->GetJob(call.get(), request, &response);
  if (!status.ok()) return ctx.FailBroker(status);
  if (ctx.json()) {
    PrintJson(response);
  } else {
    PrintJob(response.job(), response.unserved());
  }
  return ExitCode::kOk;
}

ExitCode List(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags("cohortctl ls [flags]", "Lists jobs in submission order (--newest: newest first), one page at a time.");
  flags.Inherit(&ctx.global_flags());
  JobFilterFlags filter_flags(flags);
  bool newest = false;
  int page_size = 100;
  std::string page_token;
  flags.Add("newest", &newest, "newest first (the latest jobs on the first page)");
  flags.Add("page-size", &page_size, "jobs per page (the broker caps it)");
  flags.Add("page-token", &page_token, "the next page, as the previous page said (same filters)", "TOKEN");
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 0, 0, &parsed)) return *done;
  if (page_size < 0) return Fail(ExitCode::kUsage, "--page-size must not be negative");
  absl::StatusOr<cohort::v1::JobFilter> filter = filter_flags.Build(flags);
  if (!filter.ok()) return FailLocal(filter.status());
  cohort::v1::ListJobsRequest request;
  *request.mutable_filter() = *std::move(filter);
  request.set_newest_first(newest);
  request.set_page_size(page_size);
  request.set_page_token(page_token);

  absl::StatusOr<cohort::v1::Broker::Stub*> broker = ctx.Broker();
  if (!broker.ok()) return FailLocal(broker.status());
  cohort::v1::ListJobsResponse response;
  auto call = ctx.Call();
  grpc::Status status = (*broker)->ListJobs(call.get(), request, &response);
  if (!status.ok()) return ctx.FailBroker(status);
  if (ctx.json()) {
    PrintJson(response);
    return ExitCode::kOk;
  }
  const absl::Time now = absl::Now();
  Table table({"ID", "QUEUE", "KIND", "STATE", "PRIORITY", "ATTEMPT", "AGE", "ERROR"});
  for (const Job& job : response.jobs()) {
    const std::string error =
        job.has_error() ? Excerpt(absl::StrCat(job.error().code(), ": ", job.error().message()), 60) : "";
    table.AddRow({job.id(), job.spec().queue(), job.spec().kind(), StateName(job.state()),
                  absl::StrCat(job.spec().priority()), absl::StrCat(job.attempt()),
                  FormatAge(now - FromProto(job.create_time())), error});
  }
  table.Print();
  if (!response.next_page_token().empty()) {
    std::fprintf(stderr, "more jobs: repeat with --page-token=%s\n", response.next_page_token().c_str());
  }
  return ExitCode::kOk;
}

ExitCode Cancel(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags("cohortctl cancel [flags] JOB_ID",
                "Cancels a job: a pending or queued job never runs; a running one's executor is told to stop.");
  flags.Inherit(&ctx.global_flags());
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 1, 1, &parsed)) return *done;
  absl::StatusOr<cohort::v1::Broker::Stub*> broker = ctx.Broker();
  if (!broker.ok()) return FailLocal(broker.status());
  cohort::v1::CancelJobRequest request;
  request.set_job_id(parsed.positional[0]);
  cohort::v1::CancelJobResponse response;
  auto call = ctx.Call();
  grpc::Status status = (*broker)->CancelJob(call.get(), request, &response);
  if (!status.ok()) return ctx.FailBroker(status);
  if (ctx.json()) {
    PrintJson(response);
  } else if (response.already_ended()) {
    PrintRaw(absl::StrCat(request.job_id(), " had already ended ", StateName(response.state()), "\n"));
  } else if (response.state() == cohort::v1::JOB_STATE_RUNNING) {
    PrintRaw(absl::StrCat(request.job_id(), " cancel requested: its executor was told to stop\n"));
  } else {
    PrintRaw(absl::StrCat(request.job_id(), " ", StateName(response.state()), "\n"));
  }
  return ExitCode::kOk;
}

// The event log's last sequence now, from a one-job listing.
grpc::Status CurrentSequence(Context& ctx, cohort::v1::Broker::Stub& broker, int64_t* sequence) {
  cohort::v1::ListJobsRequest request;
  request.set_page_size(1);
  cohort::v1::ListJobsResponse response;
  auto call = ctx.Call();
  grpc::Status status = broker.ListJobs(call.get(), request, &response);
  *sequence = response.sequence();
  return status;
}

ExitCode Watch(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags("cohortctl watch [flags]", "Follows the broker's event log live: one line per job transition.");
  flags.Inherit(&ctx.global_flags());
  int64_t from = -1;
  std::string queue;
  int64_t limit = 0;
  flags.Add("from", &from, "show events after this sequence number (0: every event retained; -1: only new ones)",
            "SEQ");
  flags.Add("queue", &queue, "only events of jobs in this queue", "QUEUE");
  flags.Add("limit", &limit, "stop after this many events (0: follow until interrupted)");
  flags.SetFooter("With --output=json, each event is one JobEvent object on its own line.\n");
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 0, 0, &parsed)) return *done;
  if (from < -1) return Fail(ExitCode::kUsage, "--from must be -1 (new events), 0 or a sequence number");
  if (limit < 0) return Fail(ExitCode::kUsage, "--limit must not be negative");
  absl::StatusOr<cohort::v1::Broker::Stub*> broker = ctx.Broker();
  if (!broker.ok()) return FailLocal(broker.status());
  if (from == -1) {
    grpc::Status status = CurrentSequence(ctx, **broker, &from);
    if (!status.ok()) return ctx.FailBroker(status);
  }
  constexpr char kRow[] = "%-8s  %-12s  %-24s  %-22s  %s\n";
  if (!ctx.json()) PrintRaw(absl::StrFormat(kRow, "SEQ", "TIME", "JOB", "TRANSITION", "REASON"));
  int64_t shown = 0;
  Reconnect reconnect("watch");
  // One Watch call after another: a broker that restarts or goes away for a while ends
  // the stream UNAVAILABLE, and the next call resumes after the last event shown.
  while (true) {
    cohort::v1::WatchRequest request;
    request.set_after_sequence(from);
    auto call = ctx.WaitingCall(absl::InfiniteDuration());
    std::unique_ptr<grpc::ClientReader<cohort::v1::WatchResponse>> stream = (*broker)->Watch(call.get(), request);
    cohort::v1::WatchResponse batch;
    while (stream->Read(&batch)) {
      reconnect.Connected();
      for (const cohort::v1::JobEvent& event : batch.events()) {
        from = event.sequence();
        if (!queue.empty() && event.job().spec().queue() != queue) continue;
        if (ctx.json()) {
          PrintJson(event);
        } else {
          const std::string transition =
              event.from_state() == cohort::v1::JOB_STATE_UNSPECIFIED
                  ? StateName(event.to_state())
                  : absl::StrCat(StateName(event.from_state()), " -> ", StateName(event.to_state()));
          PrintRaw(absl::StrFormat(kRow, absl::StrCat(event.sequence()),
                                   absl::FormatTime("%H:%M:%E3S", FromProto(event.time()), absl::UTCTimeZone()),
                                   event.job_id(), transition, ReasonName(event.reason())));
        }
        if (limit > 0 && ++shown == limit) {
          call->TryCancel();
          stream->Finish().ok();  // CANCELLED by the line above: the limit was reached.
          return ExitCode::kOk;
        }
      }
    }
    grpc::Status end = stream->Finish();
    if (!Reconnect::Retryable(end)) return end.ok() ? ExitCode::kOk : ctx.FailBroker(end);
    reconnect.Wait(end, ctx.options().server, absl::StrCat("resuming after event ", from));
  }
}

}  // namespace

std::vector<Command> JobCommands() {
  return {
      {"get", "show one job", Get},
      {"ls", "list jobs (--newest; filters: --state, --queue, --kind, --label, --since, --until, --error-code)",
       List},
      {"cancel", "cancel a job", Cancel},
      {"watch", "follow the event log live (--from a sequence)", Watch},
  };
}

}  // namespace cohort::cli
