// cohortctl executors: who is connected to the broker and how busy they are.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/cli/command.h"

namespace cohort::cli {
namespace {

ExitCode Executors(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags("cohortctl executors [flags]",
                "Lists the executors connected to the broker: capacity, running attempts, credits, the queues\n"
                "and kinds they take ((all): every one), heartbeats.");
  flags.Inherit(&ctx.global_flags());
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 0, 0, &parsed)) return *done;
  absl::StatusOr<cohort::v1::Broker::Stub*> broker = ctx.Broker();
  if (!broker.ok()) return FailLocal(broker.status());
  cohort::v1::ListExecutorsResponse response;
  auto call = ctx.Call();
  grpc::Status status = (*broker)->ListExecutors(call.get(), cohort::v1::ListExecutorsRequest(), &response);
  if (!status.ok()) return ctx.FailBroker(status);
  if (ctx.json()) {
    PrintJson(response);
    return ExitCode::kOk;
  }
  const absl::Time now = absl::Now();
  Table table(
      {"EXECUTOR", "CAPACITY", "RUNNING", "CREDITS", "QUEUES", "KINDS", "CONNECTED", "LAST HEARTBEAT", "LABELS"});
  for (const cohort::v1::ExecutorInfo& e : response.executors()) {
    std::vector<std::string> labels;
    for (const auto& [k, v] : e.labels()) labels.push_back(absl::StrCat(k, "=", v));
    std::sort(labels.begin(), labels.end());
    table.AddRow({e.executor_id(), absl::StrCat(e.capacity()), absl::StrCat(e.running()), absl::StrCat(e.credits()),
                  e.queues().empty() ? "(all)" : absl::StrJoin(e.queues(), ","),
                  e.kinds().empty() ? "(all)" : Excerpt(absl::StrJoin(e.kinds(), ","), 60),
                  FormatAgo(e.connect_time(), e.has_connect_time(), now),
                  FormatAgo(e.last_heartbeat_time(), e.has_last_heartbeat_time(), now),
                  labels.empty() ? "-" : absl::StrJoin(labels, ",")});
  }
  table.Print();
  return ExitCode::kOk;
}

}  // namespace

std::vector<Command> ExecutorCommands() {
  return {{"executors", "list connected executors: capacity, running, credits, kinds, last heartbeat", Executors}};
}

}  // namespace cohort::cli
