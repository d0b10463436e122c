#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace cohort::testing {

// GETs http://<host_port>/metrics (HTTP/1.0 over a plain socket) and returns the body,
// the Prometheus text exposition. The whole exchange is bounded by 10 s.
// INVALID_ARGUMENT for a `host_port` that is not HOST:PORT, UNAVAILABLE when the
// connection fails or the reply is not 200, DEADLINE_EXCEEDED on timeout, INTERNAL for
// a reply that is not HTTP.
absl::StatusOr<std::string> ScrapeMetrics(std::string host_port);

// The value of one series in an exposition `body`: a bare name
// (`cohort_broker_waiters`) or a name with labels
// (`cohort_broker_jobs_submitted_total{queue="q"}`). The series must match exactly —
// same name, same label set — though labels may be listed in any order. nullopt if the
// body has no such series (or `series` does not parse). NaN and ±Inf are values too.
std::optional<double> MetricValue(const std::string& body, std::string_view series);

}  // namespace cohort::testing
