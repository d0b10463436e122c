#include "services/scheduler/scheduler_metrics.h"

#include <chrono>

#include "libs/common/metrics.h"
#include "libs/rpc/status.h"

namespace cohort::scheduler {
namespace {

using common::Unit;

const prometheus::Histogram::BucketBoundaries& LagBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300};
  return *b;
}

}  // namespace

SchedulerMetrics::SchedulerMetrics(prometheus::Registry& registry)
    : SchedulerMetrics(common::ServiceMetrics(registry, "scheduler")) {}

SchedulerMetrics::SchedulerMetrics(common::ServiceMetrics m)
    : releases_(m.AddCounter("releases", "PENDING jobs released to the broker, by reason.")),
      fires_(m.AddCounter("schedule_fires", "Schedule slots handled: submitted, skipped (overlap) or failed.")),
      schedule_lag_(m.AddHistogram("schedule_lag", "Fire time minus slot time of submitted slots.", Unit::kSeconds)
                        .Add({}, LagBuckets())),
      rpcs_(m.AddCounter("rpcs", "Scheduler RPCs served, by method and status code.")),
      rpc_seconds_(m.AddHistogram("rpc", "Scheduler RPC latency by method.", Unit::kSeconds)),
      auth_denied_(m.AddCounter("auth_denied", "Calls refused for their credential, by method and reason.")),
      pending_timers_(m.AddGauge("pending_timers", "Armed release timers (delayed jobs and retry backoffs).").Add({})),
      pending_jobs_(m.AddGauge("pending_jobs", "PENDING jobs the scheduler is tracking.").Add({})),
      schedules_(m.AddGauge("schedules", "Schedules stored.").Add({})),
      schedules_invalid_(m.AddGauge("schedules_invalid",
                                    "Stored schedules that fail validation: never armed until updated or deleted.")
                             .Add({})),
      broker_synced_(m.AddGauge("broker_synced_timestamp",
                                 "Unix time as of which every event of the broker's log was applied; stands still "
                                 "while the broker is unreachable.",
                                 Unit::kSeconds)
                         .Add({})),
      resyncs_(m.AddCounter("resyncs", "Listings of the broker's PENDING jobs followed by a new Watch.").Add({})) {}

void SchedulerMetrics::Rpc(const rpc::UnaryOutcome& call) {
  const std::string method(call.method);
  rpcs_.Add({{"method", method}, {"code", std::string(rpc::CodeName(call.code))}}).Increment();
  rpc_seconds_.Add({{"method", method}}, common::LatencyBuckets())
      .Observe(std::chrono::duration<double>(call.elapsed).count());
}

}  // namespace cohort::scheduler
