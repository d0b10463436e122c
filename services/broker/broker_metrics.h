#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/common/label_cap.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace cohort::broker {

// The broker's Prometheus metrics (names cohort_broker_*, labels queue/state/method/
// code only). prometheus-cpp's metrics are thread-safe, so any thread may record;
// the engine records from its loop, the service from gRPC threads.
//
// Queue names come from clients, so the queue label is bounded by a LabelCap: the
// first `queue_label_limit` queues seen keep their name and the others share the
// label "_other" (counters and histograms add up there; the gauges of "_other" are
// the sum, or for the oldest queued time the minimum, over those queues).
class BrokerMetrics {
 public:
  explicit BrokerMetrics(prometheus::Registry& registry, std::size_t queue_label_limit = 100);

  void Submitted(const std::string& queue, int n = 1) { submitted_.Add({{"queue", Label(queue)}}).Increment(n); }
  void Dispatched(const std::string& queue, double queued_seconds) {
    const std::string label = Label(queue);
    dispatched_.Add({{"queue", label}}).Increment();
    dispatch_latency_.Add({{"queue", label}}, LatencyBuckets()).Observe(queued_seconds);
  }
  // A job reached a terminal state (succeeded, failed, cancelled).
  void Ended(const std::string& queue, const std::string& state) {
    ended_.Add({{"queue", Label(queue)}, {"state", state}}).Increment();
  }
  void RunDuration(const std::string& queue, double seconds) {
    run_duration_.Add({{"queue", Label(queue)}}, RunBuckets()).Observe(seconds);
  }
  // An attempt was lost (lease expired, stream dropped, broker restart) and requeued.
  void Redelivered(const std::string& queue) { redelivered_.Add({{"queue", Label(queue)}}).Increment(); }
  void StaleCompletion() { stale_completions_.Increment(); }
  // A call the handler refused for its credential (the authorizer counts the others in
  // the same family): `method` a full method path, `reason` queue_not_allowed or
  // executor_not_allowed.
  void AuthDenied(const std::string& method, const std::string& reason) {
    auth_denied_.Add({{"method", method}, {"reason", reason}}).Increment();
  }
  // A bulk operation started (not a dry run); `action` is cancel, retry or delete.
  void BulkStarted(const std::string& action) { bulk_operations_.Add({{"action", action}}).Increment(); }
  // Jobs a bulk operation handled; `outcome` is changed or skipped.
  void BulkJobs(const std::string& action, const std::string& outcome, std::int64_t n) {
    bulk_jobs_.Add({{"action", action}, {"outcome", outcome}}).Increment(static_cast<double>(n));
  }
  // `oldest_queued` is when the oldest QUEUED job was queued (unset: none is queued).
  // Exported as a Unix time, so its age, time() - value, keeps growing in Prometheus
  // while the queue does not change.
  void QueueGauges(const std::string& queue, double depth, double running, std::optional<absl::Time> oldest_queued);
  // The queue was deleted: its gauges go (or leave the "_other" sums). Its label keeps
  // its place in the cap, so a queue created again under the name keeps its series.
  void QueueDeleted(const std::string& queue);
  // QUEUED jobs of the queue whose kind no connected executor of the queue runs.
  void Unserved(const std::string& queue, double jobs);
  void Commit(double records, double seconds) {
    commit_records_.Observe(records);
    commit_seconds_.Observe(seconds);
  }
  void Rpc(const std::string& method, const std::string& code, double seconds) {
    rpcs_.Add({{"method", method}, {"code", code}}).Increment();
    rpc_seconds_.Add({{"method", method}}, LatencyBuckets()).Observe(seconds);
  }
  prometheus::Gauge& waiters() { return waiters_; }
  prometheus::Gauge& executors() { return executors_; }
  prometheus::Gauge& loop_lag() { return loop_lag_; }

  static const prometheus::Histogram::BucketBoundaries& LatencyBuckets();
  static const prometheus::Histogram::BucketBoundaries& RunBuckets();

 private:
  // The gauges of one queue, as last set.
  struct QueueValues {
    double depth = 0;
    double running = 0;
    std::optional<absl::Time> oldest_queued;
    double unserved = 0;
  };
  std::string Label(const std::string& queue) { return queue_labels_.Label(queue); }
  void SetGauges(const std::string& label, const QueueValues& v);
  // Sets the gauges of "_other" from values_ of the queues beyond the cap.
  void ExportOther() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records `v` for `queue` and exports its label's gauges.
  void Export(const std::string& queue, const QueueValues& v) ABSL_LOCKS_EXCLUDED(mu_);

  common::LabelCap queue_labels_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, QueueValues> values_ ABSL_GUARDED_BY(mu_);  // by queue
  prometheus::Family<prometheus::Counter>& submitted_;
  prometheus::Family<prometheus::Counter>& dispatched_;
  prometheus::Family<prometheus::Counter>& ended_;
  prometheus::Family<prometheus::Counter>& redelivered_;
  prometheus::Counter& stale_completions_;
  prometheus::Family<prometheus::Counter>& auth_denied_;
  prometheus::Family<prometheus::Counter>& bulk_operations_;
  prometheus::Family<prometheus::Counter>& bulk_jobs_;
  prometheus::Family<prometheus::Histogram>& dispatch_latency_;
  prometheus::Family<prometheus::Histogram>& run_duration_;
  prometheus::Family<prometheus::Gauge>& depth_;
  prometheus::Family<prometheus::Gauge>& running_;
  prometheus::Family<prometheus::Gauge>& oldest_queued_;
  prometheus::Family<prometheus::Gauge>& unserved_;
  prometheus::Histogram& commit_records_;
  prometheus::Histogram& commit_seconds_;
  prometheus::Family<prometheus::Counter>& rpcs_;
  prometheus::Family<prometheus::Histogram>& rpc_seconds_;
  prometheus::Gauge& waiters_;
  prometheus::Gauge& executors_;
  prometheus::Gauge& loop_lag_;
};

}  // namespace cohort::broker
