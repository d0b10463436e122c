#pragma once

#include <string>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace cohort::executor {

// The executor's Prometheus metrics (cohort_executor_*; labels kind and outcome only).
// Thread-safe, as prometheus-cpp's metrics are.
class ExecutorMetrics {
 public:
  explicit ExecutorMetrics(prometheus::Registry& registry);

  // An attempt ended: outcome is succeeded, failed, timeout, cancelled or interrupted.
  void Ended(const std::string& kind, const std::string& outcome, double seconds) {
    attempts_.Add({{"kind", kind}, {"outcome", outcome}}).Increment();
    run_seconds_.Add({{"kind", kind}}, Buckets()).Observe(seconds);
  }
  prometheus::Gauge& running() { return running_; }
  prometheus::Gauge& capacity() { return capacity_; }
  prometheus::Gauge& connected() { return connected_; }
  prometheus::Counter& reconnects() { return reconnects_; }

 private:
  static const prometheus::Histogram::BucketBoundaries& Buckets();
  prometheus::Family<prometheus::Counter>& attempts_;
  prometheus::Family<prometheus::Histogram>& run_seconds_;
  prometheus::Gauge& running_;
  prometheus::Gauge& capacity_;
  prometheus::Gauge& connected_;
  prometheus::Counter& reconnects_;
};

}  // namespace cohort::executor
