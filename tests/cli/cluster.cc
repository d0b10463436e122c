#include "tests/cli/cluster.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/metrics_scrape.h"
#include "tests/testing/runfiles.h"

namespace cohort::testing {

absl::StatusOr<std::unique_ptr<Cluster>> Cluster::Start() {
  std::unique_ptr<Cluster> cluster(new Cluster());
  absl::StatusOr<std::unique_ptr<ServiceProcess>> broker =
      ServiceProcess::Start(BinaryPath("services/broker/cohort-broker"),
                            {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
                             "--data-dir=" + cluster->dir_.Path("broker")});
  if (!broker.ok()) return broker.status();
  cluster->broker_ = *std::move(broker);
  absl::StatusOr<std::unique_ptr<ServiceProcess>> executor = ServiceProcess::Start(
      BinaryPath("services/executor/cohort-executor"),
      {"--broker=" + cluster->broker_->grpc_address(), "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
       absl::StrCat("--executor-id=", kExecutorId), absl::StrCat("--capacity=", kExecutorCapacity),
       "--allow-exec=/bin/*"});
  if (!executor.ok()) return executor.status();
  cluster->executor_ = *std::move(executor);

  // The ready line comes before the executor's first Connect; its gauge says when the
  // broker has welcomed it. Checked every 10 ms, for at most 20 s.
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (true) {
    absl::StatusOr<std::string> metrics = ScrapeMetrics(cluster->executor_->metrics_address());
    if (metrics.ok() && MetricValue(*metrics, "cohort_executor_connected") == 1.0) return cluster;
    if (absl::Now() > give_up) return absl::DeadlineExceededError("the executor did not connect within 20s");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace cohort::testing
