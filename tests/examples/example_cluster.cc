#include "tests/examples/example_cluster.h"

#include <utility>
#include <vector>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "tests/testing/runfiles.h"

namespace cohort::testing {

absl::StatusOr<std::unique_ptr<ExampleCluster>> StartExampleCluster(const ClusterOptions& options) {
  std::unique_ptr<ExampleCluster> cluster(new ExampleCluster());
  std::vector<std::string> broker_args = {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
                                          "--data-dir=" + cluster->dir_.Path("broker")};
  if (options.lease > absl::ZeroDuration()) {
    broker_args.push_back("--lease=" + absl::FormatDuration(options.lease));
  }
  if (options.heartbeat_interval > absl::ZeroDuration()) {
    broker_args.push_back("--heartbeat-interval=" + absl::FormatDuration(options.heartbeat_interval));
  }
  absl::StatusOr<std::unique_ptr<ServiceProcess>> broker =
      ServiceProcess::Start(BinaryPath("services/broker/cohort-broker"), broker_args);
  if (!broker.ok()) return broker.status();
  cluster->broker_ = std::move(*broker);

  absl::StatusOr<std::unique_ptr<ServiceProcess>> executor = ServiceProcess::Start(
      BinaryPath("services/executor/cohort-executor"),
      {"--broker=" + cluster->address(), "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
       "--executor-id=examples-builtin", "--capacity=4", std::string("--queues=") + kBuiltinQueue});
  if (!executor.ok()) return executor.status();
  cluster->executor_ = std::move(*executor);

  cluster->channel_ = grpc::CreateChannel(cluster->address(), grpc::InsecureChannelCredentials());
  cluster->stub_ = cohort::v1::Broker::NewStub(cluster->channel_);
  return cluster;
}

}  // namespace cohort::testing
