#pragma once

#include <optional>
#include <string>

#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace cohort::broker {

// The broker's Prometheus metrics (names cohort_broker_*, labels queue/state/method/
// code only). prometheus-cpp's metrics are thread-safe, so any thread may record;
// the engine records from its loop, the service from gRPC threads.
class BrokerMetrics {
 public:
  explicit BrokerMetrics(prometheus::Registry& registry);

  void Submitted(const std::string& queue, int n = 1) { submitted_.Add({{"queue", queue}}).Increment(n); }
  void Dispatched(const std::string& queue, double queued_seconds) {
    dispatched_.Add({{"queue", queue}}).Increment();
    dispatch_latency_.Add({{"queue", queue}}, LatencyBuckets()).Observe(queued_seconds);
  }
  // A job reached a terminal state (succeeded, failed, cancelled).
  void Ended(const std::string& queue, const std::string& state) {
    ended_.Add({{"queue", queue}, {"state", state}}).Increment();
  }
  void RunDuration(const std::string& queue, double seconds) {
    run_duration_.Add({{"queue", queue}}, RunBuckets()).Observe(seconds);
  }
  // An attempt was lost (lease expired, stream dropped, broker restart) and requeued.
  void Redelivered(const std::string& queue) { redelivered_.Add({{"queue", queue}}).Increment(); }
  void StaleCompletion() { stale_completions_.Increment(); }
  // `oldest_queued` is when the oldest QUEUED job was queued (unset: none is queued).
  // Exported as a Unix time, so its age, time() - value, keeps growing in Prometheus
  // while the queue does not change.
  void QueueGauges(const std::string& queue, double depth, double running, std::optional<absl::Time> oldest_queued) {
    depth_.Add({{"queue", queue}}).Set(depth);
    running_.Add({{"queue", queue}}).Set(running);
    oldest_queued_.Add({{"queue", queue}})
        .Set(oldest_queued.has_value() ? absl::ToDoubleSeconds(*oldest_queued - absl::UnixEpoch()) : 0);
  }
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
  prometheus::Family<prometheus::Counter>& submitted_;
  prometheus::Family<prometheus::Counter>& dispatched_;
  prometheus::Family<prometheus::Counter>& ended_;
  prometheus::Family<prometheus::Counter>& redelivered_;
  prometheus::Counter& stale_completions_;
  prometheus::Family<prometheus::Histogram>& dispatch_latency_;
  prometheus::Family<prometheus::Histogram>& run_duration_;
  prometheus::Family<prometheus::Gauge>& depth_;
  prometheus::Family<prometheus::Gauge>& running_;
  prometheus::Family<prometheus::Gauge>& oldest_queued_;
  prometheus::Histogram& commit_records_;
  prometheus::Histogram& commit_seconds_;
  prometheus::Family<prometheus::Counter>& rpcs_;
  prometheus::Family<prometheus::Histogram>& rpc_seconds_;
  prometheus::Gauge& waiters_;
  prometheus::Gauge& executors_;
  prometheus::Gauge& loop_lag_;
};

}  // namespace cohort::broker
