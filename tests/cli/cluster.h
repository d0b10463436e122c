#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"

namespace cohort::testing {

// A running Cohort for cohortctl's end-to-end tests: a real cohort-broker and a real
// cohort-executor (capacity 8, `exec` allowed for /bin/*), on 127.0.0.1 with free
// ports and a data directory of its own, stopped and removed on destruction.
//
// The one place that knows how a cluster is made: when cohort-dev (broker, scheduler
// and executor in one process) lands, Start() switches to it and the tests stay as
// they are. The test's `data` must list the binaries Start() runs.
class Cluster {
 public:
  // Starts the services and returns once each has printed its ready line and the
  // executor is connected to the broker.
  static absl::StatusOr<std::unique_ptr<Cluster>> Start();

  // For cohortctl --server: the broker's gRPC address, HOST:PORT.
  const std::string& address() const { return broker_->grpc_address(); }
  // The executor's id, as `cohortctl executors` lists it.
  static constexpr char kExecutorId[] = "cli-test-executor";
  static constexpr int kExecutorCapacity = 8;

 private:
  Cluster() = default;

  TempDir dir_{"cohort-cli"};
  std::unique_ptr<ServiceProcess> broker_;
  std::unique_ptr<ServiceProcess> executor_;
};

}  // namespace cohort::testing
