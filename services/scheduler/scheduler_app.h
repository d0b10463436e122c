#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/channel.h"
#include "grpcpp/impl/service_type.h"
#include "libs/runtime/event.h"
#include "libs/runtime/event_loop.h"
#include "libs/runtime/task.h"
#include "prometheus/registry.h"
#include "services/scheduler/schedules.h"

namespace cohort::scheduler {

// What a scheduler needs: its store, its broker and its limits.
struct SchedulerAppOptions {
  // RocksDB directory for schedules (created if missing).
  std::string data_dir;
  // Channel to the broker (Watch, ListJobs, GetJob, Submit, ReleaseJobs).
  std::shared_ptr<grpc::Channel> broker;
  ScheduleLimits limits;
  // Most releases per ReleaseJobs call (at most the broker's --max-submit-batch).
  std::size_t release_batch = 1'000;

  // INVALID_ARGUMENT naming the option when one is unusable.
  absl::Status Validate() const;
};

// A whole scheduler on a loop the caller owns: the schedule store, the Scheduler gRPC
// service, and the controller that follows the broker and releases PENDING jobs. Used
// by cohort-scheduler and by cohort-dev. The caller registers service() on its gRPC
// server and runs Run() on the loop.
class SchedulerApp {
 public:
  // Opens the store and loads the schedules (blocking). Metrics go to `registry`.
  static absl::StatusOr<std::unique_ptr<SchedulerApp>> Open(runtime::EventLoop& loop, prometheus::Registry& registry,
                                                            SchedulerAppOptions options);
  ~SchedulerApp();

  grpc::Service& service();

  // Arms the schedules, then follows the broker and releases jobs until `stop` is set;
  // then stops firing and following and returns. Call once, on the loop.
  runtime::Task<void> Run(runtime::Event& stop);

 private:
  struct Parts;
  explicit SchedulerApp(std::unique_ptr<Parts> parts);

  std::unique_ptr<Parts> parts_;
};

}  // namespace cohort::scheduler
