// cohortctl replicas: the members of a replicated broker group (issue 18,
// docs/replication.md): ls, add ID ADDRESS, remove ID, transfer [--to ID]. Calls
// cohort.v1.ReplicaAdmin at --server (the group's leader answers); needs the `admin`
// scope.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/auth/channel_credentials.h"
#include "protos/cohort/v1/replicas.grpc.pb.h"
#include "services/cli/command.h"
#include "services/cli/connection.h"
#include "services/cli/output.h"

namespace cohort::cli {
namespace {

// How long `add` may wait for the new replica to catch up and be promoted.
constexpr absl::Duration kAddWait = absl::Minutes(5);
constexpr std::uint64_t kMaxReplicaId = 1'000'000;
// How long a transfer may take to show at the group: the old leader's election timeout
// (the transfer's own bound) plus the new leader's start (it catches up and recovers the
// queues before it answers).
constexpr absl::Duration kTransferWait = absl::Seconds(30);

// A ReplicaAdmin stub on --server with the global security options (as Context opens
// the broker's: a token flag replaces a token file from the environment or config).
absl::StatusOr<std::unique_ptr<cohort::v1::ReplicaAdmin::Stub>> Admin(Context& ctx) {
  auth::ClientSecurityOptions security = ctx.options().security;
  std::string token_file = ctx.options().token_file;
  if (ctx.global_flags().IsSet("token")) {
    token_file.clear();
  } else if (ctx.global_flags().IsSet("token-file")) {
    security.token.clear();
  }
  if (security.token.empty() && !token_file.empty()) {
    absl::StatusOr<std::string> token = auth::ReadTokenFile(token_file);
    if (!token.ok()) return token.status();
    security.token = *std::move(token);
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      Connect("broker", "--server", ctx.options().server, ctx.options().timeout, security);
  if (!channel.ok()) return channel.status();
  return cohort::v1::ReplicaAdmin::NewStub(*channel);
}

absl::StatusOr<std::uint64_t> ParseId(const std::string& text) {
  std::uint64_t id = 0;
  if (!absl::SimpleAtoi(text, &id) || id == 0 || id > kMaxReplicaId) {
    return absl::InvalidArgumentError(
        absl::StrCat("replica id ", Excerpt(text, 32), " is invalid: use 1..", kMaxReplicaId));
  }
  return id;
}

const char* RoleName(cohort::v1::ReplicaInfo::Role role) {
  switch (role) {
    case cohort::v1::ReplicaInfo::VOTER:
      return "voter";
    case cohort::v1::ReplicaInfo::STANDBY:
      return "standby";
    case cohort::v1::ReplicaInfo::SPARE:
      return "spare";
    default:
      return "unknown";
  }
}

ExitCode List(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags("cohortctl replicas ls [flags]",
                "Lists the replicas of the broker group as its leader sees them: id, raft address, role\n"
                "(voter, standby, spare), how many log entries each is behind the leader.");
  flags.Inherit(&ctx.global_flags());
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 0, 0, &parsed)) return *done;
  auto admin = Admin(ctx);
  if (!admin.ok()) return FailLocal(admin.status());
  cohort::v1::ListReplicasResponse response;
  auto call = ctx.Call();
  grpc::Status status = (*admin)->ListReplicas(call.get(), cohort::v1::ListReplicasRequest(), &response);
  if (!status.ok()) return ctx.FailBroker(status);
  if (ctx.json()) {
    PrintJson(response);
    return ExitCode::kOk;
  }
  Table table({"ID", "ADDRESS", "ROLE", "LEADER", "LAG"});
  for (const cohort::v1::ReplicaInfo& r : response.replicas()) {
    table.AddRow({absl::StrCat(r.id()), r.address(), RoleName(r.role()), r.leader() ? "yes" : "",
                  absl::StrCat(r.lag_entries())});
  }
  table.Print();
  return ExitCode::kOk;
}

ExitCode Add(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags("cohortctl replicas add ID HOST:PORT [flags]",
                "Adds replica ID, whose raft address is HOST:PORT, to the broker group. Start it first with\n"
                "  cohort-broker --replica-id=ID --replicas=<every replica, it included> --join ...\n"
                "It copies the leader's log or snapshot without a vote, then becomes a voter: the command\n"
                "returns once that is committed (it waits up to 5 minutes plus --timeout).");
  flags.Inherit(&ctx.global_flags());
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 2, 2, &parsed)) return *done;
  absl::StatusOr<std::uint64_t> id = ParseId(parsed.positional[0]);
  if (!id.ok()) return FailLocal(id.status());
  auto admin = Admin(ctx);
  if (!admin.ok()) return FailLocal(admin.status());
  cohort::v1::AddReplicaRequest request;
  request.set_id(*id);
  request.set_address(parsed.positional[1]);
  cohort::v1::AddReplicaResponse response;
  auto call = ctx.WaitingCall(kAddWait);
  grpc::Status status = (*admin)->AddReplica(call.get(), request, &response);
  if (!status.ok()) return ctx.FailBroker(status);
  std::printf("replica %llu added as a voter\n", static_cast<unsigned long long>(*id));
  return ExitCode::kOk;
}

// The replica that leads, as the group answers (the channel redials the address list
// until one answers or `wait` passes), and the term; the last status otherwise.
struct Leadership {
  std::uint64_t leader = 0;
  std::uint64_t term = 0;
};
absl::StatusOr<Leadership> LeaderOf(cohort::v1::ReplicaAdmin::Stub& admin, absl::Duration wait) {
  const absl::Time deadline = absl::Now() + wait;
  grpc::Status last;
  do {
    grpc::ClientContext call;
    call.set_deadline(absl::ToChronoTime(std::min(deadline, absl::Now() + absl::Seconds(2))));
    call.set_wait_for_ready(true);
    cohort::v1::ListReplicasResponse response;
    last = admin.ListReplicas(&call, cohort::v1::ListReplicasRequest(), &response);
    if (last.ok()) {
      for (const cohort::v1::ReplicaInfo& r : response.replicas()) {
        if (r.leader()) return Leadership{r.id(), response.term()};
      }
      return absl::InternalError("the group's answer names no leader");
    }
  } while (absl::Now() < deadline && (last.error_code() == grpc::StatusCode::UNAVAILABLE ||
                                      last.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED));
  return absl::Status(static_cast<absl::StatusCode>(last.error_code()), last.error_message());
}

// Moves leadership from `from` to `to` (0: any other voter) and waits until the group
// answers with a new leader. kOk with `*leader` set, or the exit code of the failure.
ExitCode MoveLeadership(Context& ctx, cohort::v1::ReplicaAdmin::Stub& admin, std::uint64_t from, std::uint64_t to,
                        Leadership* leader) {
  cohort::v1::TransferLeadershipRequest request;
  request.set_to(to);
  cohort::v1::TransferLeadershipResponse response;
  auto call = ctx.WaitingCall(kTransferWait);
  const absl::Time asked = absl::Now();
  grpc::Status status = admin.TransferLeadership(call.get(), request, &response);
  // The leader's own answer, well before the call's deadline: the target did not take
  // over within the election timeout, and the leader kept leading.
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED && absl::Now() - asked < kTransferWait / 2) {
    return Fail(ExitCode::kRejected, absl::StrCat("DEADLINE_EXCEEDED: ", status.error_message()));
  }
  // UNAVAILABLE: the old leader may have restarted before its answer went out; the
  // group's answer below says whether leadership moved.
  if (!status.ok() && status.error_code() != grpc::StatusCode::UNAVAILABLE) return ctx.FailBroker(status);
  const absl::Time deadline = absl::Now() + kTransferWait;
  absl::StatusOr<Leadership> now = LeaderOf(admin, kTransferWait);
  // The old leader may still answer for a moment before it restarts.
  while (now.ok() && now->leader == from && absl::Now() < deadline) now = LeaderOf(admin, deadline - absl::Now());
  if (!now.ok()) return ctx.FailBroker(grpc::Status(static_cast<grpc::StatusCode>(now.status().code()),
                                                    std::string(now.status().message())));
  if (now->leader == from || (to != 0 && now->leader != to)) {
    const std::string wanted = to == 0 ? "another replica" : absl::StrCat("replica ", to);
    return Fail(ExitCode::kRejected, absl::StrCat("leadership did not move to ", wanted, ": replica ", now->leader,
                                                 " leads (term ", now->term, ")"));
  }
  *leader = *now;
  return ExitCode::kOk;
}

ExitCode Transfer(Context& ctx, absl::Span<const std::string> args) {
  std::string to_text;
  FlagSet flags("cohortctl replicas transfer [--to ID] [flags]",
                "Hands the broker group's leadership to replica ID (default: a voter that is up to date) without\n"
                "waiting for an election timeout. The old leader restarts as a follower; writes in flight\n"
                "are retried by their clients at the new leader. Returns once the new leader answers.");
  flags.Add("to", &to_text, "the replica to lead next (default: any up-to-date voter)", "ID");
  flags.Inherit(&ctx.global_flags());
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 0, 0, &parsed)) return *done;
  std::uint64_t to = 0;
  if (!to_text.empty()) {
    absl::StatusOr<std::uint64_t> id = ParseId(to_text);
    if (!id.ok()) return FailLocal(id.status());
    to = *id;
  }
  auto admin = Admin(ctx);
  if (!admin.ok()) return FailLocal(admin.status());
  absl::StatusOr<Leadership> before = LeaderOf(**admin, ctx.options().timeout);
  if (!before.ok()) {
    return ctx.FailBroker(grpc::Status(static_cast<grpc::StatusCode>(before.status().code()),
                                       std::string(before.status().message())));
  }
  if (to != 0 && before->leader == to) {
    std::printf("replica %llu leads already (term %llu)\n", static_cast<unsigned long long>(to),
                static_cast<unsigned long long>(before->term));
    return ExitCode::kOk;
  }
  Leadership after;
  if (ExitCode code = MoveLeadership(ctx, **admin, before->leader, to, &after); code != ExitCode::kOk) return code;
  std::printf("replica %llu leads (term %llu), replica %llu restarts as a follower\n",
              static_cast<unsigned long long>(after.leader), static_cast<unsigned long long>(after.term),
              static_cast<unsigned long long>(before->leader));
  return ExitCode::kOk;
}

ExitCode Remove(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags("cohortctl replicas remove ID [flags]",
                "Removes replica ID from the broker group (then stop its process). If it leads, leadership is\n"
                "first handed to another voter (as `replicas transfer`), then the new leader removes it.");
  flags.Inherit(&ctx.global_flags());
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 1, 1, &parsed)) return *done;
  absl::StatusOr<std::uint64_t> id = ParseId(parsed.positional[0]);
  if (!id.ok()) return FailLocal(id.status());
  auto admin = Admin(ctx);
  if (!admin.ok()) return FailLocal(admin.status());
  absl::StatusOr<Leadership> leading = LeaderOf(**admin, ctx.options().timeout);
  if (!leading.ok()) {
    return ctx.FailBroker(grpc::Status(static_cast<grpc::StatusCode>(leading.status().code()),
                                       std::string(leading.status().message())));
  }
  if (leading->leader == *id) {
    Leadership after;
    if (ExitCode code = MoveLeadership(ctx, **admin, *id, 0, &after); code != ExitCode::kOk) return code;
    std::printf("replica %llu leads now (term %llu)\n", static_cast<unsigned long long>(after.leader),
                static_cast<unsigned long long>(after.term));
  }
  cohort::v1::RemoveReplicaRequest request;
  request.set_id(*id);
  cohort::v1::RemoveReplicaResponse response;
  auto call = ctx.Call();
  grpc::Status status = (*admin)->RemoveReplica(call.get(), request, &response);
  if (!status.ok()) return ctx.FailBroker(status);
  std::printf("replica %llu removed\n", static_cast<unsigned long long>(*id));
  return ExitCode::kOk;
}

ExitCode Replicas(Context& ctx, absl::Span<const std::string> args) {
  if (!args.empty()) {
    const std::string& sub = args[0];
    if (sub == "ls" || sub == "list") return List(ctx, args.subspan(1));
    if (sub == "add") return Add(ctx, args.subspan(1));
    if (sub == "remove" || sub == "rm") return Remove(ctx, args.subspan(1));
    if (sub == "transfer") return Transfer(ctx, args.subspan(1));
    if (!absl::StartsWith(sub, "-")) {
      return Fail(ExitCode::kUsage,
                  absl::StrCat("unknown replicas command ", Excerpt(sub, 32), " (see cohortctl replicas --help)"));
    }
  }
  return List(ctx, args);
}

}  // namespace

std::vector<Command> ReplicaCommands() {
  return {{"replicas",
           "a replicated broker group's members: replicas ls|add ID HOST:PORT|remove ID|transfer [--to ID]",
           Replicas, "ls add remove transfer"}};
}

}  // namespace cohort::cli
