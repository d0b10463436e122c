#include "services/broker/replica_admin_service.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "libs/common/log.h"
#include "libs/common/quote.h"
#include "libs/rpc/observed_unary.h"
#include "libs/rpc/status.h"

namespace cohort::broker {
namespace {

using runtime::Task;

const log::Logger kLog("broker");

// Longest address accepted from the wire: a DNS name (253) and a port.
constexpr std::size_t kMaxAddressBytes = 260;

cohort::v1::ReplicaInfo::Role RoleOnWire(replication::MemberRole role) {
  switch (role) {
    case replication::MemberRole::kVoter:
      return cohort::v1::ReplicaInfo::VOTER;
    case replication::MemberRole::kStandby:
      return cohort::v1::ReplicaInfo::STANDBY;
    case replication::MemberRole::kSpare:
      return cohort::v1::ReplicaInfo::SPARE;
  }
  return cohort::v1::ReplicaInfo::ROLE_UNSPECIFIED;
}

// The change's outcome, logged: info when done, warning when refused.
void LogOutcome(const char* what, std::uint64_t id, const absl::Status& status) {
  if (status.ok()) {
    kLog.Info(absl::StrCat("replica ", what), {{"id", absl::StrCat(id)}});
  } else {
    kLog.Warn(absl::StrCat("replica not ", what), {{"id", absl::StrCat(id)}, {"status", status.ToString()}});
  }
}

}  // namespace

ReplicaAdminService::ReplicaAdminService(runtime::EventLoop& loop, Replica& replica, prometheus::Registry& registry)
    : loop_(loop),
      replica_(replica),
      rpcs_(prometheus::BuildCounter()
                .Name("cohort_broker_replica_admin_rpcs_total")
                .Help("ReplicaAdmin calls served, by method and status code")
                .Register(registry)) {}

template <typename Body>
grpc::ServerUnaryReactor* ReplicaAdminService::Unary(const char* method, Body body) {
  return rpc::ServeObservedUnary(
      loop_, method,
      [this](const rpc::UnaryOutcome& outcome) {
        rpcs_.Add({{"method", std::string(outcome.method)}, {"code", std::string(rpc::CodeName(outcome.code))}})
            .Increment();
      },
      std::move(body));
}

grpc::ServerUnaryReactor* ReplicaAdminService::ListReplicas(grpc::CallbackServerContext*,
                                                            const cohort::v1::ListReplicasRequest*,
                                                            cohort::v1::ListReplicasResponse* resp) {
  return Unary("ListReplicas", [this, resp]() -> Task<grpc::Status> {
    const replication::ReplicationProgress progress = replica_.progress();
    const replication::LogStatus status = replica_.status();
    if (progress.role != replication::Role::kLeader) {
      co_return rpc::ToGrpc(replication::NotLeaderError(status.leader));
    }
    resp->set_commit_index(progress.commit_index);
    resp->set_term(status.term);
    for (const replication::MemberProgress& m : progress.members) {
      cohort::v1::ReplicaInfo* info = resp->add_replicas();
      info->set_id(m.member.id);
      info->set_address(m.member.address);
      info->set_role(RoleOnWire(m.role));
      info->set_leader(m.member.id == replica_.config().self.id);
      const std::uint64_t match = m.match_index.value_or(0);
      info->set_lag_entries(match >= progress.last_index ? 0 : progress.last_index - match);
    }
    co_return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* ReplicaAdminService::AddReplica(grpc::CallbackServerContext*,
                                                          const cohort::v1::AddReplicaRequest* req,
                                                          cohort::v1::AddReplicaResponse*) {
  return Unary("AddReplica", [this, req]() -> Task<grpc::Status> {
    if (req->address().size() > kMaxAddressBytes) {
      co_return rpc::ToGrpc(absl::InvalidArgumentError(absl::StrCat(
          "address ", common::QuoteBounded(req->address()), " is longer than ", kMaxAddressBytes, " bytes")));
    }
    kLog.Info("adding a replica", {{"id", absl::StrCat(req->id())}, {"address", req->address()}});
    const replication::Member member{req->id(), req->address()};
    absl::Status status = co_await replica_.AddMember(member);
    LogOutcome("added", req->id(), status);
    co_return rpc::ToGrpc(status);
  });
}

grpc::ServerUnaryReactor* ReplicaAdminService::RemoveReplica(grpc::CallbackServerContext*,
                                                             const cohort::v1::RemoveReplicaRequest* req,
                                                             cohort::v1::RemoveReplicaResponse*) {
  return Unary("RemoveReplica", [this, req]() -> Task<grpc::Status> {
    kLog.Info("removing a replica", {{"id", absl::StrCat(req->id())}});
    absl::Status status = co_await replica_.RemoveMember(req->id());
    LogOutcome("removed", req->id(), status);
    co_return rpc::ToGrpc(status);
  });
}

grpc::ServerUnaryReactor* ReplicaAdminService::TransferLeadership(grpc::CallbackServerContext*,
                                                                  const cohort::v1::TransferLeadershipRequest* req,
                                                                  cohort::v1::TransferLeadershipResponse*) {
  // Destroyed with the handler at gRPC's OnDone, once the reply is sent (or the call
  // is over): only then may the process end for the hand-over.
  std::shared_ptr<void> finish(nullptr, [this](void*) { replica_.FinishHandover(); });
  return Unary("TransferLeadership", [this, req, finish = std::move(finish)]() -> Task<grpc::Status> {
    kLog.Info("transferring leadership", {{"to", req->to() == 0 ? std::string("any") : absl::StrCat(req->to())}});
    absl::Status status = co_await replica_.TransferLeadership(req->to());
    LogOutcome("leading now", req->to(), status);
    co_return rpc::ToGrpc(status);
  });
}

}  // namespace cohort::broker
