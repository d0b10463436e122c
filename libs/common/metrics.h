#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/common/address.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace cohort::common {

// A service's Prometheus registry, served over HTTP at /metrics.
//
// Owns the registry and the HTTP server (prometheus-cpp's Exposer, on civetweb
// threads of its own). The registry and the metrics built from it are thread-safe and
// live as long as the MetricsServer, or longer for holders of shared_registry().
// Destruction stops the HTTP server first, then releases the registry.
//
//   absl::StatusOr<HostPort> listen = ParseHostPort("--metrics-listen", flag);
//   absl::StatusOr<std::unique_ptr<MetricsServer>> metrics = MetricsServer::Start(*listen);
//   ServiceMetrics broker((*metrics)->registry(), "broker");
//   prometheus::Counter& submitted =
//       broker.AddCounter("jobs_submitted", "Jobs accepted by Submit.").Add({{"queue", q}});
class MetricsServer {
 public:
  // Serves /metrics on `address`; port 0 picks a free port (see address()). A hostname
  // is resolved to its first IPv4 address. Errors name the address and the cause:
  // UNAVAILABLE when the address is in use, INVALID_ARGUMENT when it is not an address
  // of this machine, does not resolve, or is IPv6 while the HTTP server was built
  // without IPv6 (Debian's civetweb 1.15 is), PERMISSION_DENIED for a privileged port.
  // `threads` is the number of HTTP worker threads (scrapes served at once).
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const HostPort& address,
                                                              std::size_t threads = 2);

  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The address actually bound: a numeric host (hostnames resolved) and the real port,
  // never 0. This is what the ready line reports.
  const HostPort& address() const { return address_; }

  prometheus::Registry& registry() const { return *registry_; }
  const std::shared_ptr<prometheus::Registry>& shared_registry() const { return registry_; }

 private:
  MetricsServer(std::shared_ptr<prometheus::Registry> registry,
                std::unique_ptr<prometheus::Exposer> exposer, HostPort address, int listen_fd);

  // Declared before exposer_ so it is destroyed after it: the exposer must stop
  // scraping before the registry goes away.
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  HostPort address_;
  // civetweb's listening socket (owned by civetweb), or -1 if it could not be found;
  // see ~MetricsServer.
  int listen_fd_;
};

// The base unit a metric's name ends with (Prometheus naming: base units only).
enum class Unit { kNone, kSeconds, kBytes };

// `cohort_<service>_<what>` followed by `_seconds` or `_bytes` for those units.
// `service` and `what` must be snake_case ([a-z][a-z0-9_]*, no `__`, no trailing `_`),
// and `what` must not already end in a unit or `_total`; a violation is a programming
// error and aborts with a message naming the metric.
std::string MetricName(absl::string_view service, absl::string_view what, Unit unit = Unit::kNone);

// Builds metric families for one service with Cohort's names, in a registry that
// outlives this object:
//   counters   cohort_<service>_<what>[_<unit>]_total
//   gauges     cohort_<service>_<what>[_<unit>]
//   histograms cohort_<service>_<what>[_<unit>]        (latencies: Unit::kSeconds)
// The families live in the registry; the references stay valid as long as it does.
// Names are checked as MetricName() does (abort on a bad name); asking twice for the
// same name and type returns the same family, as prometheus::Registry does. Labels
// must have low cardinality (queue, state, kind, method, code; never a job id).
// Thread-safe, like the registry.
class ServiceMetrics {
 public:
  ServiceMetrics(prometheus::Registry& registry, std::string service);

  prometheus::Family<prometheus::Counter>& AddCounter(absl::string_view what, absl::string_view help,
                                                      Unit unit = Unit::kNone);
  prometheus::Family<prometheus::Gauge>& AddGauge(absl::string_view what, absl::string_view help,
                                                  Unit unit = Unit::kNone);
  // Each histogram in the family takes its buckets when added, e.g.
  // family.Add({{"method", "Submit"}}, LatencyBuckets()).
  prometheus::Family<prometheus::Histogram>& AddHistogram(absl::string_view what,
                                                          absl::string_view help, Unit unit);

  const std::string& service() const { return service_; }

 private:
  prometheus::Registry& registry_;
  const std::string service_;
};

// The standard buckets for latencies in seconds, 100 µs to 10 s in 1-2.5-5 steps, fine
// below a millisecond where RPC and dispatch latencies sit (16 buckets).
const prometheus::Histogram::BucketBoundaries& LatencyBuckets();

// Buckets for job run durations in seconds, 1 ms to 1 hour.
const prometheus::Histogram::BucketBoundaries& RunDurationBuckets();

}  // namespace cohort::common
