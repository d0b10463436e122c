#include "services/scheduler/scheduler_app.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/common/log.h"
#include "libs/runtime/task_group.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "services/scheduler/broker_follower.h"
#include "services/scheduler/release_tracker.h"
#include "services/scheduler/releaser.h"
#include "services/scheduler/schedule_store.h"
#include "services/scheduler/scheduler_metrics.h"
#include "services/scheduler/scheduler_service.h"

namespace cohort::scheduler {

namespace {
const log::Logger kLog("scheduler");
}  // namespace

absl::Status SchedulerApp::Validate(const SchedulerAppOptions& options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("--data-dir must not be empty");
  if (options.broker == nullptr) return absl::InvalidArgumentError("a broker channel is required");
  if (options.limits.min_interval <= absl::ZeroDuration()) return absl::InvalidArgumentError("--min-interval must be positive");
  if (options.limits.max_schedules < 1) return absl::InvalidArgumentError("--max-schedules must be positive");
  if (options.release_batch < 1) return absl::InvalidArgumentError("--release-batch must be positive");
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
            loop, *broker, tracker, metrics, [this](const cohort::v1::Job& job) { schedules.OnJobEnded(job.id()); },
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

absl::StatusOr<std::unique_ptr<SchedulerApp>> SchedulerApp::Create(runtime::EventLoop& loop,
                                                                    prometheus::Registry& registry,
                                                                    SchedulerAppOptions options) {
  if (absl::Status s = Validate(options); !s.ok()) return s;
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
  kLog.Info("scheduler starting", {{"schedules", p.schedules.size()}});
  runtime::TaskGroup parts;
  parts.Spawn(p.releaser.Run());
  parts.Spawn(p.follower.Run());
  co_await stop.Wait();
  co_await p.schedules.Stop();
  // Both end on their own once stopped: a plain Join, so an error in either is raised.
  p.follower.Stop();
  p.releaser.Stop();
  co_await parts.Join();
  kLog.Info("scheduler stopped");
}

}  // namespace cohort::scheduler
