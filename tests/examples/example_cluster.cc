#include "tests/examples/example_cluster.h"

#include <utility>
#include <vector>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "tests/testing/runfiles.h"

namespace cohort::testing {

absl::StatusOr<std::unique_ptr<ExampleCluster>> StartExampleCluster(const ClusterOptions& options) {
  std::unique_ptr<ExampleCluster> cluster(new ExampleCluster());
  std::vector<std::string> args = {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
                                   "--data-dir=" + cluster->dir_.Path("dev"), "--capacity=4",
                                   std::string("--queues=") + kBuiltinQueue};
  if (options.lease > absl::ZeroDuration()) args.push_back("--lease=" + absl::FormatDuration(options.lease));
  if (options.heartbeat_interval > absl::ZeroDuration()) {
    args.push_back("--heartbeat-interval=" + absl::FormatDuration(options.heartbeat_interval));
  }
  absl::StatusOr<std::unique_ptr<ServiceProcess>> dev =
      ServiceProcess::Start(BinaryPath("services/dev/cohort-dev"), args);
  if (!dev.ok()) return dev.status();
  cluster->dev_ = std::move(*dev);

  cluster->channel_ = grpc::CreateChannel(cluster->address(), grpc::InsecureChannelCredentials());
  cluster->stub_ = cohort::v1::Broker::NewStub(cluster->channel_);
  return cluster;
}

}  // namespace cohort::testing
