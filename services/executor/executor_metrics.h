#pragma once

#include <cstdint>
#include <string>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace cohort::executor {

// The executor's Prometheus metrics (cohort_executor_*; labels kind, outcome and
// stream only), registered in a registry that outlives this object (a shared one in
// cohort-dev). Thread-safe, as prometheus-cpp's metrics are.
//
//   attempts_total{kind,outcome}        attempts that ended: succeeded, failed, timeout,
//                                       cancelled, interrupted (drain)
//   run_duration_seconds{kind}          run time of an attempt
//   running, capacity                   attempts running now; most at once
//   prefetch_window                     attempts it asks to hold unstarted beyond
//                                       capacity now (PrefetchWindow)
//   connected, reconnects_total         the Connect stream to the broker
//   stream_stalls_total                 streams cancelled because the broker had sent
//                                       nothing for 3 heartbeat intervals (wedged)
//   stream_gaps_total                   streams closed because a broker message number
//                                       was missing, repeated or out of order
//   spawn_seconds                       exec: from the spawn request to the child existing
//   output_bytes_total{stream}          exec: bytes children wrote to stdout / stderr,
//                                       kept or not (counted when the child ends)
//   progress_reports_total{outcome}     reports from jobs: sent to the broker,
//                                       superseded (replaced by a newer report before it
//                                       was sent, or unsent when its stream broke and
//                                       the attempt ended), malformed (exec lines ignored)
class ExecutorMetrics {
 public:
  explicit ExecutorMetrics(prometheus::Registry& registry);

  // An attempt ended: outcome is succeeded, failed, timeout, cancelled or interrupted.
  void Ended(const std::string& kind, const std::string& outcome, double seconds) {
    attempts_.Add({{"kind", kind}, {"outcome", outcome}}).Increment();
    run_seconds_.Add({{"kind", kind}}, Buckets()).Observe(seconds);
  }
  void ChildSpawned(double seconds) { spawn_seconds_.Observe(seconds); }
  void ChildOutput(std::uint64_t stdout_bytes, std::uint64_t stderr_bytes) {
    stdout_bytes_.Increment(static_cast<double>(stdout_bytes));
    stderr_bytes_.Increment(static_cast<double>(stderr_bytes));
  }
  void StreamStalled() { stream_stalls_.Increment(); }
  void StreamGap() { stream_gaps_.Increment(); }
  void ProgressSent() { progress_sent_.Increment(); }
  void ProgressSuperseded() { progress_superseded_.Increment(); }
  void ProgressMalformed(std::int64_t lines) { progress_malformed_.Increment(static_cast<double>(lines)); }

  prometheus::Gauge& running() { return running_; }
  prometheus::Gauge& capacity() { return capacity_; }
  prometheus::Gauge& prefetch_window() { return prefetch_window_; }
  prometheus::Gauge& connected() { return connected_; }
  prometheus::Counter& reconnects() { return reconnects_; }

 private:
  static const prometheus::Histogram::BucketBoundaries& Buckets();
  prometheus::Family<prometheus::Counter>& attempts_;
  prometheus::Family<prometheus::Histogram>& run_seconds_;
  prometheus::Gauge& running_;
  prometheus::Gauge& capacity_;
  prometheus::Gauge& prefetch_window_;
  prometheus::Gauge& connected_;
  prometheus::Counter& reconnects_;
  prometheus::Counter& stream_stalls_;
  prometheus::Counter& stream_gaps_;
  prometheus::Histogram& spawn_seconds_;
  prometheus::Family<prometheus::Counter>& output_bytes_;
  prometheus::Counter& stdout_bytes_;
  prometheus::Counter& stderr_bytes_;
  prometheus::Family<prometheus::Counter>& progress_reports_;
  prometheus::Counter& progress_sent_;
  prometheus::Counter& progress_superseded_;
  prometheus::Counter& progress_malformed_;
};

}  // namespace cohort::executor
