#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"

namespace cohort::testing {

// A running Cohort for cohortctl's end-to-end tests: cohort-dev, the all-in-one binary
// (broker, scheduler and an executor of capacity 8 allowed to `exec` /bin/*), serving
// the Broker and Scheduler services on one gRPC port of 127.0.0.1, with a data
// directory of its own; stopped and removed on destruction.
//
// The one place that knows how a cluster is made: to run the tests against separate
// services instead, only Start() changes. The test's `data` must list the binaries
// Start() runs.
class Cluster {
 public:
  // Starts the cluster and returns once it is ready: cohort-dev prints its ready line
  // after its executor has connected, so a submitted job runs.
  static absl::StatusOr<std::unique_ptr<Cluster>> Start();

  // For cohortctl --server (and the scheduler, which defaults to the same): HOST:PORT.
  // The same across Restart.
  const std::string& address() const { return address_; }
  // Its /metrics, HOST:PORT (changes at Restart).
  const std::string& metrics_address() const { return dev_->metrics_address(); }

  // Kills cohort-dev with SIGKILL and starts it again on the same address and data
  // directory, returning once it is ready again (a broker restart, as a client sees it).
  absl::Status Restart();

  static constexpr int kExecutorCapacity = 8;

 private:
  Cluster() = default;

  static absl::StatusOr<std::unique_ptr<ServiceProcess>> StartDev(const std::string& listen,
                                                                  const std::string& data_dir);

  TempDir dir_{"cohort-cli"};
  std::unique_ptr<ServiceProcess> dev_;
  std::string address_;
};

}  // namespace cohort::testing
