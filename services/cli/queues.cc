// cohortctl queues: depth, running and oldest age per queue; pause, resume, limits.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "libs/common/proto_time.h"
#include "services/cli/command.h"

namespace cohort::cli {

using common::FromProto;

namespace {

using cohort::v1::QueueLimits;

std::string LimitText(const QueueLimits& limits) {
  std::vector<std::string> parts;
  parts.push_back(absl::StrCat("max-concurrency=", limits.max_concurrency() == 0 ? "unlimited"
                                                                                  : absl::StrCat(limits.max_concurrency())));
  parts.push_back(
      absl::StrCat("max-rate=", limits.max_rate() == 0 ? "unlimited" : absl::StrFormat("%g/s", limits.max_rate())));
  parts.push_back(absl::StrCat("weight=", limits.weight() == 0 ? 1 : limits.weight()));
  return absl::StrJoin(parts, " ");
}

constexpr char kSubcommands[] =
    "commands:\n"
    "  cohortctl queues                     list queues: depth, depth by priority, running, oldest age, limits\n"
    "  cohortctl queues pause QUEUE         stop dispatching from a queue (submits are still accepted)\n"
    "  cohortctl queues resume QUEUE        dispatch again\n"
    "  cohortctl queues limits QUEUE        show or set --max-concurrency, --max-rate, --weight\n"
    "  cohortctl queues create QUEUE        create one (--paused, limits); a Submit creates it too\n"
    "  cohortctl queues delete QUEUE        delete an empty queue (--with-jobs: and its jobs)\n";

// The UNSERVED cell: the jobs no connected executor runs, and their kinds (a bounded
// excerpt, "N more" for the kinds the broker left out or the excerpt cut).
std::string UnservedCell(const cohort::v1::QueueInfo& q) {
  std::vector<std::string> shown;
  std::size_t width = 0;
  for (const std::string& kind : q.unserved_kinds()) {
    if (!shown.empty() && width + kind.size() > 40) break;
    shown.push_back(Excerpt(kind, 40));
    width += kind.size() + 1;
  }
  const std::int64_t total = std::max<std::int64_t>(q.unserved_kind_count(), q.unserved_kinds_size());
  const std::int64_t more = total - static_cast<std::int64_t>(shown.size());
  return absl::StrCat(q.unserved(), " (", absl::StrJoin(shown, ","), more > 0 ? absl::StrCat(", ", more, " more") : "",
                      ")");
}

ExitCode ListQueues(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags("cohortctl queues [COMMAND] [flags]", "Lists the broker's queues, or changes one.");
  flags.Inherit(&ctx.global_flags());
  flags.SetFooter(kSubcommands);
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 0, 0, &parsed)) return *done;
  absl::StatusOr<cohort::v1::Broker::Stub*> broker = ctx.Broker();
  if (!broker.ok()) return FailLocal(broker.status());
  cohort::v1::ListQueuesResponse response;
  auto call = ctx.Call();
  grpc::Status status = (*broker)->ListQueues(call.get(), cohort::v1::ListQueuesRequest(), &response);
  if (!status.ok()) return ctx.FailBroker(status);
  if (ctx.json()) {
    PrintJson(response);
    return ExitCode::kOk;
  }
  Table table({"QUEUE", "STATE", "DEPTH", "BY PRIORITY", "RUNNING", "OLDEST", "MAX CONCURRENCY", "MAX RATE", "WEIGHT",
               "EXECUTORS", "UNSERVED"});
  for (const cohort::v1::QueueInfo& q : response.queues()) {
    std::vector<std::string> by_priority;
    for (const auto& d : q.depth_by_priority()) by_priority.push_back(absl::StrCat(d.priority(), ":", d.queued()));
    table.AddRow({q.name(), q.paused() ? "paused" : "active", absl::StrCat(q.depth()),
                  by_priority.empty() ? "-" : absl::StrJoin(by_priority, " "), absl::StrCat(q.running()),
                  q.has_oldest_queued_age() ? FormatAge(FromProto(q.oldest_queued_age())) : "-",
                  q.limits().max_concurrency() == 0 ? "-" : absl::StrCat(q.limits().max_concurrency()),
                  q.limits().max_rate() == 0 ? "-" : absl::StrFormat("%g/s", q.limits().max_rate()),
                  absl::StrCat(q.limits().weight() == 0 ? 1 : q.limits().weight()), absl::StrCat(q.executors()),
                  q.unserved_kinds().empty() ? "-" : UnservedCell(q)});
  }
  table.Print();
  return ExitCode::kOk;
}

// queues pause|resume QUEUE.
template <bool kPause>
ExitCode PauseOrResume(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags(absl::StrCat("cohortctl queues ", kPause ? "pause" : "resume", " [flags] QUEUE"),
                kPause ? "Stops dispatch from a queue: queued jobs wait, running jobs carry on, submits are accepted."
                       : "Resumes dispatch from a paused queue.");
  flags.Inherit(&ctx.global_flags());
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 1, 1, &parsed)) return *done;
  absl::StatusOr<cohort::v1::Broker::Stub*> broker = ctx.Broker();
  if (!broker.ok()) return FailLocal(broker.status());
  const std::string& queue = parsed.positional[0];
  auto call = ctx.Call();
  grpc::Status status;
  if constexpr (kPause) {
    cohort::v1::PauseQueueRequest request;
    request.set_queue(queue);
    cohort::v1::PauseQueueResponse response;
    status = (*broker)->PauseQueue(call.get(), request, &response);
    if (status.ok() && ctx.json()) PrintJson(response);
  } else {
    cohort::v1::ResumeQueueRequest request;
    request.set_queue(queue);
    cohort::v1::ResumeQueueResponse response;
    status = (*broker)->ResumeQueue(call.get(), request, &response);
    if (status.ok() && ctx.json()) PrintJson(response);
  }
  if (!status.ok()) return ctx.FailBroker(status);
  if (!ctx.json()) PrintRaw(absl::StrCat("queue ", queue, kPause ? " paused\n" : " resumed\n"));
  return ExitCode::kOk;
}

ExitCode Limits(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags("cohortctl queues limits [flags] QUEUE",
                "Sets a queue's dispatch limits (only those given; the others are kept) and prints them all.");
  flags.Inherit(&ctx.global_flags());
  int max_concurrency = 0;
  double max_rate = 0;
  int weight = 0;
  flags.Add("max-concurrency", &max_concurrency,
            "most jobs of the queue running at once; 0 means unlimited, not stopped (to stop dispatch: queues pause)");
  flags.Add("max-rate", &max_rate, "most dispatches per second (0: unlimited)");
  flags.Add("weight", &weight, "share in the round robin across queues (0: the default, 1)");
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 1, 1, &parsed)) return *done;
  if (max_concurrency < 0) {
    return Fail(ExitCode::kUsage, absl::StrCat("--max-concurrency ", max_concurrency,
                                               " is invalid: use 0 (unlimited) or a positive number"));
  }
  if (max_rate < 0 || !(max_rate == max_rate)) {
    return Fail(ExitCode::kUsage, "--max-rate is invalid: use 0 (unlimited) or a positive number");
  }
  if (weight < 0) return Fail(ExitCode::kUsage, "--weight is invalid: use 0 (the default, 1) or a positive number");
  absl::StatusOr<cohort::v1::Broker::Stub*> broker = ctx.Broker();
  if (!broker.ok()) return FailLocal(broker.status());
  cohort::v1::SetQueueLimitsRequest request;
  request.set_queue(parsed.positional[0]);
  QueueLimits* limits = request.mutable_limits();
  if (flags.IsSet("max-concurrency")) limits->set_max_concurrency(max_concurrency);
  if (flags.IsSet("max-rate")) limits->set_max_rate(max_rate);
  if (flags.IsSet("weight")) limits->set_weight(weight);
  cohort::v1::SetQueueLimitsResponse response;
  auto call = ctx.Call();
  grpc::Status status = (*broker)->SetQueueLimits(call.get(), request, &response);
  if (!status.ok()) return ctx.FailBroker(status);
  if (ctx.json()) {
    PrintJson(response);
  } else {
    PrintRaw(absl::StrCat("queue ", request.queue(), " ", LimitText(response.limits()), "\n"));
  }
  return ExitCode::kOk;
}

// queues create QUEUE [--paused] [--max-concurrency ...].
ExitCode Create(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags("cohortctl queues create [flags] QUEUE",
                "Creates a queue (a Submit to a new queue creates it too); an existing queue is left as it is.");
  flags.Inherit(&ctx.global_flags());
  bool paused = false;
  int max_concurrency = 0;
  double max_rate = 0;
  int weight = 0;
  flags.Add("paused", &paused, "start paused (queued jobs wait until queues resume)");
  flags.Add("max-concurrency", &max_concurrency, "most jobs of the queue running at once (0: unlimited)");
  flags.Add("max-rate", &max_rate, "most dispatches per second (0: unlimited)");
  flags.Add("weight", &weight, "share in the round robin across queues (0: the default, 1)");
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 1, 1, &parsed)) return *done;
  if (max_concurrency < 0 || max_rate < 0 || weight < 0) {
    return Fail(ExitCode::kUsage, "--max-concurrency, --max-rate and --weight must not be negative");
  }
  absl::StatusOr<cohort::v1::Broker::Stub*> broker = ctx.Broker();
  if (!broker.ok()) return FailLocal(broker.status());
  cohort::v1::CreateQueueRequest request;
  request.set_queue(parsed.positional[0]);
  request.set_paused(paused);
  if (flags.IsSet("max-concurrency")) request.mutable_limits()->set_max_concurrency(max_concurrency);
  if (flags.IsSet("max-rate")) request.mutable_limits()->set_max_rate(max_rate);
  if (flags.IsSet("weight")) request.mutable_limits()->set_weight(weight);
  cohort::v1::CreateQueueResponse response;
  auto call = ctx.Call();
  grpc::Status status = (*broker)->CreateQueue(call.get(), request, &response);
  if (!status.ok()) return ctx.FailBroker(status);
  if (ctx.json()) {
    PrintJson(response);
  } else {
    PrintRaw(absl::StrCat("queue ", request.queue(),
                          response.already_existed() ? " already existed (left unchanged)\n" : " created\n"));
  }
  return ExitCode::kOk;
}

// queues delete QUEUE [--with-jobs].
ExitCode Delete(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags("cohortctl queues delete [flags] QUEUE",
                "Deletes an empty queue and its settings; with --with-jobs, its jobs too (none may be running).");
  flags.Inherit(&ctx.global_flags());
  bool with_jobs = false;
  flags.Add("with-jobs", &with_jobs, "also delete every job of the queue, in any state (all or nothing)");
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 1, 1, &parsed)) return *done;
  absl::StatusOr<cohort::v1::Broker::Stub*> broker = ctx.Broker();
  if (!broker.ok()) return FailLocal(broker.status());
  cohort::v1::DeleteQueueRequest request;
  request.set_queue(parsed.positional[0]);
  request.set_delete_jobs(with_jobs);
  cohort::v1::DeleteQueueResponse response;
  auto call = ctx.Call();
  grpc::Status status = (*broker)->DeleteQueue(call.get(), request, &response);
  if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION && !with_jobs) {
    return Fail(ExitCode::kRejected, absl::StrCat("FAILED_PRECONDITION: ", status.error_message(),
                                                  " (--with-jobs deletes them too)"));
  }
  if (!status.ok()) return ctx.FailBroker(status);
  if (ctx.json()) {
    PrintJson(response);
  } else {
    PrintRaw(absl::StrCat("queue ", request.queue(), " deleted",
                          with_jobs ? absl::StrCat(", with ", response.deleted_jobs(), " job(s)") : "", "\n"));
  }
  return ExitCode::kOk;
}

ExitCode Queues(Context& ctx, absl::Span<const std::string> args) {
  if (!args.empty()) {
    const std::string& sub = args[0];
    if (sub == "pause") return PauseOrResume<true>(ctx, args.subspan(1));
    if (sub == "resume") return PauseOrResume<false>(ctx, args.subspan(1));
    if (sub == "limits") return Limits(ctx, args.subspan(1));
    if (sub == "list") return ListQueues(ctx, args.subspan(1));
    if (sub == "create") return Create(ctx, args.subspan(1));
    if (sub == "delete") return Delete(ctx, args.subspan(1));
    if (!absl::StartsWith(sub, "-")) {
      return Fail(ExitCode::kUsage, absl::StrCat("unknown queues command \"", sub, "\" (see cohortctl queues --help)"));
    }
  }
  return ListQueues(ctx, args);
}

}  // namespace

std::vector<Command> QueueCommands() {
  return {{"queues", "list queues (depth, running, oldest age); queues pause|resume|limits QUEUE", Queues,
           "list create delete pause resume limits"}};
}

}  // namespace cohort::cli
