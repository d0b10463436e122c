#include "services/broker/replica_health.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace cohort::broker {

absl::StatusOr<std::unique_ptr<ReplicaHealthServer>> ReplicaHealthServer::Start(const common::HostPort& address,
                                                                                grpc::Service* peers) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address.ToString(), grpc::InsecureServerCredentials(), &port);
  if (peers != nullptr) builder.RegisterService(peers);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return absl::UnavailableError(absl::StrCat("--health-listen: cannot listen on ", address.ToString()));
  }
  common::HostPort bound = address;
  bound.port = static_cast<std::uint16_t>(port);
  std::unique_ptr<ReplicaHealthServer> health(new ReplicaHealthServer(std::move(server), std::move(bound)));
  health->Set(false);
  return health;
}

ReplicaHealthServer::ReplicaHealthServer(std::unique_ptr<grpc::Server> server, common::HostPort bound)
    : server_(std::move(server)), bound_(std::move(bound)) {}

ReplicaHealthServer::~ReplicaHealthServer() {
  server_->Shutdown();
  server_->Wait();
}

void ReplicaHealthServer::Set(bool serving) { server_->GetHealthCheckService()->SetServingStatus(serving); }

}  // namespace cohort::broker
