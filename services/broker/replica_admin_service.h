#pragma once

#include "grpcpp/server_context.h"
#include "libs/runtime/runtime.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/registry.h"
#include "protos/cohort/v1/replicas.grpc.pb.h"
#include "services/broker/replica.h"

namespace cohort::broker {

// cohort.v1.ReplicaAdmin (protos/cohort/v1/replicas.proto): a replicated broker group's
// membership and leadership, served by the leading replica next to the Broker service. Each call is a
// coroutine on `loop`: it range-checks the request, asks the Replica (whose raft log
// makes the change, one at a time, committed on a majority before the reply), logs the
// change and its outcome (component "broker") and counts
// cohort_broker_replica_admin_rpcs_total{method,code}. The `admin` scope is checked by
// the server's authorizer (libs/auth/scope_table.cc) before a call reaches it.
//
// Lifetime: `loop` and `replica` outlive the service and every call in flight (stop the
// gRPC server first).
class ReplicaAdminService final : public cohort::v1::ReplicaAdmin::CallbackService {
 public:
  ReplicaAdminService(runtime::EventLoop& loop, Replica& replica, prometheus::Registry& registry);

  grpc::ServerUnaryReactor* ListReplicas(grpc::CallbackServerContext* ctx, const cohort::v1::ListReplicasRequest* req,
                                         cohort::v1::ListReplicasResponse* resp) override;
  grpc::ServerUnaryReactor* AddReplica(grpc::CallbackServerContext* ctx, const cohort::v1::AddReplicaRequest* req,
                                       cohort::v1::AddReplicaResponse* resp) override;
  grpc::ServerUnaryReactor* RemoveReplica(grpc::CallbackServerContext* ctx,
                                          const cohort::v1::RemoveReplicaRequest* req,
                                          cohort::v1::RemoveReplicaResponse* resp) override;
  // Replies once this replica stepped down (Replica::TransferLeadership); the process
  // then ends (exit 75: it restarts as a follower) when gRPC is done with the reply.
  grpc::ServerUnaryReactor* TransferLeadership(grpc::CallbackServerContext* ctx,
                                               const cohort::v1::TransferLeadershipRequest* req,
                                               cohort::v1::TransferLeadershipResponse* resp) override;

 private:
  template <typename Body>
  grpc::ServerUnaryReactor* Unary(const char* method, Body body);

  runtime::EventLoop& loop_;
  Replica& replica_;
  prometheus::Family<prometheus::Counter>& rpcs_;
};

}  // namespace cohort::broker
