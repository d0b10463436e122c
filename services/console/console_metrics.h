#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/common/metrics.h"
#include "prometheus/registry.h"

namespace cohort::console {

// The console's metrics (cohort_console_*). Thread-safe, as prometheus-cpp is. Route
// labels are the API's route templates ("jobs/{id}"), never an id.
class ConsoleMetrics {
 public:
  explicit ConsoleMetrics(prometheus::Registry& registry);

  // One API request answered with `code` after `elapsed`.
  void Request(absl::string_view route, int code, absl::Duration elapsed);
  // Live event streams open now.
  prometheus::Gauge& streams() { return streams_; }
  // Job events received from the broker's Watch.
  prometheus::Counter& watch_events() { return watch_events_; }
  // Watch streams (re)established.
  prometheus::Counter& watch_connects() { return watch_connects_; }
  // Subscribers that fell behind and were sent a reset.
  prometheus::Counter& stream_resets() { return stream_resets_; }

 private:
  common::ServiceMetrics metrics_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& latency_;
  prometheus::Gauge& streams_;
  prometheus::Counter& watch_events_;
  prometheus::Counter& watch_connects_;
  prometheus::Counter& stream_resets_;
};

}  // namespace cohort::console
