#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"

namespace cohort::testing {

// The queue served by the cluster's own executor (built-in kinds). Any other queue is
// left to workers the test starts, such as examples/python/worker.py.
inline constexpr char kBuiltinQueue[] = "examples";

// Settings a test may change; zero keeps the cluster's default.
struct ClusterOptions {
  // How long an attempt's lease lasts without a heartbeat.
  absl::Duration lease = absl::ZeroDuration();
  // The heartbeat interval the broker asks of executors (shorter than the lease).
  absl::Duration heartbeat_interval = absl::ZeroDuration();
};

// A running Cohort for one test: everything the example programs need, on 127.0.0.1
// with free ports and a data directory of its own. Its processes are killed when it is
// destroyed.
class ExampleCluster {
 public:
  // cohort-dev's gRPC address, HOST:PORT: what the examples' --server/--broker take.
  const std::string& address() const { return dev_->grpc_address(); }
  // A client of that broker, for the test's own checks.
  cohort::v1::Broker::Stub& stub() { return *stub_; }

 private:
  friend absl::StatusOr<std::unique_ptr<ExampleCluster>> StartExampleCluster(const ClusterOptions&);
  ExampleCluster() = default;

  TempDir dir_{"example-cluster"};
  std::unique_ptr<ServiceProcess> dev_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<cohort::v1::Broker::Stub> stub_;
};

// Starts the cluster and returns once it serves. The one place that knows what the
// cluster is made of: a real cohort-dev (broker, scheduler, and an executor of capacity 4
// serving only kBuiltinQueue). The test's `data` must list it. Errors name the process
// that did not start.
absl::StatusOr<std::unique_ptr<ExampleCluster>> StartExampleCluster(const ClusterOptions& options = {});

}  // namespace cohort::testing
