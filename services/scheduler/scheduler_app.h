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

// What a scheduler needs: its store, its broker and its limits. The tunables are flags
// of cohort-scheduler whose defaults are the ones declared here (main.cc reads them
// from a default-constructed SchedulerAppOptions). SchedulerApp::Validate says what is
// allowed.
struct SchedulerAppOptions {
  // RocksDB directory for schedules (created if missing).
  std::string data_dir;
  // Channel to the broker (Watch, ListJobs, GetJob, Submit, ReleaseJobs).
  std::shared_ptr<grpc::Channel> broker;
  ScheduleLimits limits;
  // Most releases per ReleaseJobs call (at most the broker's --max-submit-batch).
  std::size_t release_batch = 1'000;
};

// A whole scheduler on a loop the caller owns: the schedule store, the Scheduler gRPC
// service, and the controller that follows the broker and releases PENDING jobs. Used
// by cohort-scheduler and by cohort-dev, with the lifecycle every app has
// (ExecutorApp's too): Validate → Create → Run(stop).
//
//   absl::StatusOr<std::unique_ptr<SchedulerApp>> app = SchedulerApp::Create(loop, registry, options);
//   builder.RegisterService(&(*app)->service());   // before the server starts
//   runtime::Event stop;                             // set it to stop (e.g. on SIGTERM)
//   runtime::RunUntilComplete(loop, (*app)->Run(stop));
//
// Lifetime: `loop` and `registry` outlive the app; the app is used and destroyed on
// the loop's thread, after Run() has returned (or before it started).
class SchedulerApp {
 public:
  // OK, or INVALID_ARGUMENT naming the option (by its flag) when one is unusable.
  static absl::Status Validate(const SchedulerAppOptions& options);

  // Validate(), then opens the store and loads the schedules (blocking). Metrics go
  // to `registry`.
  static absl::StatusOr<std::unique_ptr<SchedulerApp>> Create(runtime::EventLoop& loop, prometheus::Registry& registry,
                                                              SchedulerAppOptions options);
  ~SchedulerApp();

  grpc::Service& service();

  // Arms the schedules, then follows the broker and releases jobs until `stop` is set;
  // then stops firing and following and returns once every task it started has ended
  // (the follower and the releaser run in a TaskGroup joined here). Call once, on the
  // loop.
  runtime::Task<void> Run(runtime::Event& stop);

 private:
  struct Parts;
  explicit SchedulerApp(std::unique_ptr<Parts> parts);

  std::unique_ptr<Parts> parts_;
};

}  // namespace cohort::scheduler
