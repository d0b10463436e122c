#include "services/scheduler/scheduler_app.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/runtime/task_handle.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "services/scheduler/broker_follower.h"
#include "services/scheduler/release_tracker.h"
#include "services/scheduler/releaser.h"
#include "services/scheduler/schedule_store.h"
#include "services/scheduler/scheduler_metrics.h"
#include "services/scheduler/scheduler_service.h"

namespace cohort::scheduler {

absl::Status SchedulerAppOptions::Validate() const {
  if (data_dir.empty()) return absl::InvalidArgumentError("--data-dir must not be empty");
  if (broker == nullptr) return absl::InvalidArgumentError("a broker channel is required");
  if (limits.min_interval <= absl::ZeroDuration()) return absl::InvalidArgumentError("--min-interval must be positive");
  if (limits.max_schedules < 1) return absl::InvalidArgumentError("--max-schedules must be positive");
  if (release_batch < 1) return absl::InvalidArgumentError("--release-batch must be positive");
  return absl::OkStatus();
}

struct SchedulerApp::Parts {
  Parts(runtime::EventLoop& loop, prometheus::Registry& registry, SchedulerAppOptions options,
        std::unique_ptr<ScheduleStore> store_in)
      : metrics(registry),
        store(std::move(store_in)),
        broker(cohort::v1::Broker::NewStub(options.broker)),
        releaser(*broker, metrics, options.release_batch),
        tracker(loop,
                [this](ReleaseTracker::Release r) {
                  releaser.Push(std::move(r));
                  metrics.pending_jobs().Set(static_cast<double>(tracker.pending_jobs()));
                  metrics.pending_timers().Set(static_cast<double>(tracker.pending_timers()));
                }),
        schedules(loop, *store, *broker, metrics, options.limits),
        follower(
            *broker, tracker, metrics, [this](const cohort::v1::Job& job) { schedules.OnJobEnded(job.id()); },
            [this] { schedules.OnResynced(); }),
        service(loop, schedules, metrics) {}

  SchedulerMetrics metrics;
  std::unique_ptr<ScheduleStore> store;
  std::unique_ptr<cohort::v1::Broker::Stub> broker;
  Releaser releaser;
  ReleaseTracker tracker;
  Schedules schedules;
  BrokerFollower follower;
  SchedulerService service;
};

absl::StatusOr<std::unique_ptr<SchedulerApp>> SchedulerApp::Open(runtime::EventLoop& loop,
                                                                  prometheus::Registry& registry,
                                                                  SchedulerAppOptions options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<ScheduleStore>> store = ScheduleStore::Open(options.data_dir);
  if (!store.ok()) return store.status();
  auto parts = std::make_unique<Parts>(loop, registry, std::move(options), *std::move(store));
  if (absl::Status s = parts->schedules.Load(); !s.ok()) return s;
  return std::unique_ptr<SchedulerApp>(new SchedulerApp(std::move(parts)));
}

SchedulerApp::SchedulerApp(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

SchedulerApp::~SchedulerApp() = default;

grpc::Service& SchedulerApp::service() { return parts_->service; }

runtime::Task<void> SchedulerApp::Run(runtime::Event& stop) {
  Parts& p = *parts_;
  p.schedules.Start();
  runtime::TaskHandle<void> releaser = runtime::Spawn(p.releaser.Run());
  runtime::TaskHandle<void> follower = runtime::Spawn(p.follower.Run());
  co_await stop.Wait();
  co_await p.schedules.Stop();
  p.follower.Stop();
  p.releaser.Stop();
  co_await follower;
  co_await releaser;
}

}  // namespace cohort::scheduler
