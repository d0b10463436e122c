#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/impl/service_type.h"
#include "grpcpp/server.h"
#include "libs/common/address.h"

namespace cohort::broker {

// A replica's readiness as the standard gRPC health service (grpc.health.v1.Health,
// Check and Watch, for every service name and the server as a whole ""), on a port of
// its own that listens from the moment the replica has joined its group, for
// Kubernetes' gRPC readiness probe. Plaintext on purpose (kubelet's probe speaks no
// TLS). Besides that status it serves only what the group's own replicas ask of each
// other (`peers`: cohort.v1.ReplicaPeers, see replica_join.h), at the same trust as the
// raft port. NOT_SERVING until Set(true).
//
// Thread-safe. The destructor shuts the server down (Watch streams end).
class ReplicaHealthServer {
 public:
  // Listens on `address` (port 0 picks one, see bound()). Enables gRPC's default health
  // service process-wide (grpc::EnableDefaultHealthCheckService), as every Cohort server
  // does. `peers`, if set, is served too and must outlive the server. UNAVAILABLE if the
  // port cannot be bound.
  static absl::StatusOr<std::unique_ptr<ReplicaHealthServer>> Start(const common::HostPort& address,
                                                                    grpc::Service* peers = nullptr);
  ~ReplicaHealthServer();
  ReplicaHealthServer(const ReplicaHealthServer&) = delete;
  ReplicaHealthServer& operator=(const ReplicaHealthServer&) = delete;

  void Set(bool serving);
  // The address bound, port 0 resolved.
  const common::HostPort& bound() const { return bound_; }

 private:
  ReplicaHealthServer(std::unique_ptr<grpc::Server> server, common::HostPort bound);

  std::unique_ptr<grpc::Server> server_;
  const common::HostPort bound_;
};

}  // namespace cohort::broker
