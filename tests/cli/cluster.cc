#include "tests/cli/cluster.h"

#include "absl/strings/str_cat.h"
#include "tests/testing/runfiles.h"

namespace cohort::testing {

absl::StatusOr<std::unique_ptr<Cluster>> Cluster::Start() {
  std::unique_ptr<Cluster> cluster(new Cluster());
  absl::StatusOr<std::unique_ptr<ServiceProcess>> dev = ServiceProcess::Start(
      BinaryPath("services/dev/cohort-dev"),
      {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", "--data-dir=" + cluster->dir_.Path("data"),
       absl::StrCat("--capacity=", kExecutorCapacity), "--allow-exec=/bin/*"});
  if (!dev.ok()) return dev.status();
  cluster->dev_ = *std::move(dev);
  return cluster;
}

}  // namespace cohort::testing
