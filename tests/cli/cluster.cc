#include "tests/cli/cluster.h"

#include "absl/strings/str_cat.h"
#include "tests/testing/runfiles.h"

namespace cohort::testing {

absl::StatusOr<std::unique_ptr<ServiceProcess>> Cluster::StartDev(const std::string& listen,
                                                                   const std::string& data_dir) {
  // --console-listen= (none): the tests talk gRPC only, and a restart on a fixed port
  // would otherwise turn on the console at its default address.
  return ServiceProcess::Start(BinaryPath("services/dev/cohort-dev"),
                               {"--listen=" + listen, "--metrics-listen=127.0.0.1:0", "--data-dir=" + data_dir,
                                absl::StrCat("--capacity=", kExecutorCapacity), "--allow-exec=/bin/*",
                                "--console-listen="});
}

absl::StatusOr<std::unique_ptr<Cluster>> Cluster::Start() {
  std::unique_ptr<Cluster> cluster(new Cluster());
  absl::StatusOr<std::unique_ptr<ServiceProcess>> dev = StartDev("127.0.0.1:0", cluster->dir_.Path("data"));
  if (!dev.ok()) return dev.status();
  cluster->dev_ = *std::move(dev);
  cluster->address_ = cluster->dev_->grpc_address();
  return cluster;
}

absl::Status Cluster::Restart() {
  if (absl::Status killed = dev_->Kill9(); !killed.ok()) return killed;
  absl::StatusOr<std::unique_ptr<ServiceProcess>> dev = StartDev(address_, dir_.Path("data"));
  if (!dev.ok()) return dev.status();
  dev_ = *std::move(dev);
  return absl::OkStatus();
}

}  // namespace cohort::testing
