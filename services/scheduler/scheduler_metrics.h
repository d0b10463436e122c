#pragma once

#include <string>

#include "libs/rpc/unary_outcome.h"

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace cohort::common {
class ServiceMetrics;
}  // namespace cohort::common

namespace cohort::scheduler {

// The scheduler's Prometheus metrics (cohort_scheduler_*; labels reason, result,
// method, code only). Thread-safe like prometheus-cpp: the loop and gRPC threads record.
class SchedulerMetrics {
 public:
  explicit SchedulerMetrics(prometheus::Registry& registry);

  // A PENDING job was released; `reason` is the TransitionReason's short name.
  void Released(const std::string& reason, double n = 1) { releases_.Add({{"reason", reason}}).Increment(n); }
  // A schedule slot was handled: result is submitted, skipped or failed.
  void Fired(const std::string& result) { fires_.Add({{"result", result}}).Increment(); }
  // Fire time minus slot time of a submitted slot.
  void FireLag(double seconds) { schedule_lag_.Observe(seconds); }
  // A served call ended (from rpc::ServeObservedUnary): counted by method and code,
  // its latency observed by method.
  void Rpc(const rpc::UnaryOutcome& call);
  // A call the handler refused for its credential (the authorizer counts the others in
  // the same family): `method` a full method path, `reason` queue_not_allowed.
  void AuthDenied(const std::string& method, const std::string& reason) {
    auth_denied_.Add({{"method", method}, {"reason", reason}}).Increment();
  }

  prometheus::Gauge& pending_timers() { return pending_timers_; }
  prometheus::Gauge& pending_jobs() { return pending_jobs_; }
  prometheus::Gauge& schedules() { return schedules_; }
  // Stored schedules that fail today's validation (stored by an older version): loaded
  // but never armed until updated or deleted.
  prometheus::Gauge& schedules_invalid() { return schedules_invalid_; }
  // Unix time as of which every event of the broker's log was applied (BrokerFollower).
  prometheus::Gauge& broker_synced() { return broker_synced_; }
  // Times the scheduler listed the broker's PENDING jobs and (re)started Watch.
  prometheus::Counter& resyncs() { return resyncs_; }

 private:
  explicit SchedulerMetrics(common::ServiceMetrics m);

  prometheus::Family<prometheus::Counter>& releases_;
  prometheus::Family<prometheus::Counter>& fires_;
  prometheus::Histogram& schedule_lag_;
  prometheus::Family<prometheus::Counter>& rpcs_;
  prometheus::Family<prometheus::Histogram>& rpc_seconds_;
  prometheus::Family<prometheus::Counter>& auth_denied_;
  prometheus::Gauge& pending_timers_;
  prometheus::Gauge& pending_jobs_;
  prometheus::Gauge& schedules_;
  prometheus::Gauge& schedules_invalid_;
  prometheus::Gauge& broker_synced_;
  prometheus::Counter& resyncs_;
};

}  // namespace cohort::scheduler
