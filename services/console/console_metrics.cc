#include "services/console/console_metrics.h"

#include "absl/strings/str_cat.h"

namespace cohort::console {

ConsoleMetrics::ConsoleMetrics(prometheus::Registry& registry)
    : metrics_(registry, "console"),
      requests_(metrics_.AddCounter("http_requests", "API requests answered, by route and HTTP status code.")),
      latency_(metrics_.AddHistogram("http_request_duration", "Time to answer an API request, by route.",
                                     common::Unit::kSeconds)),
      streams_(metrics_.AddGauge("event_streams", "Live event streams (Server-Sent Events) open now.").Add({})),
      watch_events_(metrics_.AddCounter("watch_events", "Job events received from the broker's Watch.").Add({})),
      watch_connects_(
          metrics_.AddCounter("watch_connects", "Watch streams to the broker established (reconnects included).")
              .Add({})),
      stream_resets_(
          metrics_.AddCounter("stream_resets", "Event streams that fell behind and were told to reload.").Add({})) {}

void ConsoleMetrics::Request(absl::string_view route, int code, absl::Duration elapsed) {
  requests_.Add({{"route", std::string(route)}, {"code", absl::StrCat(code)}}).Increment();
  latency_.Add({{"route", std::string(route)}}, common::LatencyBuckets()).Observe(absl::ToDoubleSeconds(elapsed));
}

}  // namespace cohort::console
