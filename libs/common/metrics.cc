#include "libs/common/metrics.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "prometheus/check_names.h"
#include "prometheus/exposer.h"

namespace cohort::common {
namespace {

// A bad metric name is a bug in the service, found at start-up: fail loudly, in opt
// builds too.
[[noreturn]] void BadMetricName(absl::string_view name, absl::string_view why) {
  std::fprintf(stderr, "invalid metric name \"%.*s\": %.*s\n", static_cast<int>(name.size()),
               name.data(), static_cast<int>(why.size()), why.data());
  std::abort();
}

bool IsSnakeCase(absl::string_view part) {
  if (part.empty() || part.front() < 'a' || part.front() > 'z' || part.back() == '_') return false;
  char previous = 0;
  for (char c : part) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok || (c == '_' && previous == '_')) return false;
    previous = c;
  }
  return true;
}

absl::string_view UnitSuffix(Unit unit) {
  switch (unit) {
    case Unit::kNone:
      return "";
    case Unit::kSeconds:
      return "_seconds";
    case Unit::kBytes:
      return "_bytes";
  }
  return "";
}

// Resolves a hostname to its first IPv4 address, which is all civetweb can bind here.
absl::StatusOr<HostPort> ToNumeric(const HostPort& address) {
  if (address.kind != HostPort::Kind::kHostname) return address;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(address.host.c_str(), nullptr, &hints, &found);
  if (rc != 0 || found == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot serve /metrics on ", address.ToString(),
                                                   ": \"", address.host,
                                                   "\" does not resolve to an IPv4 address (",
                                                   gai_strerror(rc), ")"));
  }
  char text[INET_ADDRSTRLEN];
  const auto* sin = reinterpret_cast<const sockaddr_in*>(found->ai_addr);
  inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
  freeaddrinfo(found);
  return HostPort{text, address.port, HostPort::Kind::kIPv4};
}

// Civetweb reports every bind failure the same way; bind a probe socket to the same
// address to learn why, so the error can say what to change.
absl::Status ExplainBindFailure(const HostPort& address, absl::string_view civetweb_error) {
  const std::string prefix = absl::StrCat("cannot serve /metrics on ", address.ToString(), ": ");
  sockaddr_storage storage{};
  socklen_t length = 0;
  if (address.kind == HostPort::Kind::kIPv6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&storage);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(address.port);
    inet_pton(AF_INET6, address.host.c_str(), &sin6->sin6_addr);
    length = sizeof *sin6;
  } else {
    auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(address.port);
    inet_pton(AF_INET, address.host.c_str(), &sin->sin_addr);
    length = sizeof *sin;
  }
  const int fd = socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int error = 0;
  if (fd < 0) {
    error = errno;
  } else {
    const int one = 1;  // as civetweb does, so TIME_WAIT leftovers do not count as in use
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, reinterpret_cast<const sockaddr*>(&storage), length) != 0 || listen(fd, 1) != 0) {
      error = errno;
    }
    close(fd);
  }
  switch (error) {
    case EADDRINUSE:
      return absl::UnavailableError(absl::StrCat(prefix, "the address is already in use"));
    case EADDRNOTAVAIL:
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, "the host is not an address of this machine"));
    case EACCES:
      return absl::PermissionDeniedError(
          absl::StrCat(prefix, "permission denied (ports below 1024 need privileges)"));
    case EAFNOSUPPORT:
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, "this machine has no IPv6; use an IPv4 address"));
    case 0:
      break;
    default:
      return absl::InternalError(absl::StrCat(prefix, std::strerror(error)));
  }
  if (address.kind == HostPort::Kind::kIPv6) {
    return absl::InvalidArgumentError(absl::StrCat(
        prefix, "the HTTP server (civetweb) was built without IPv6; use an IPv4 address"));
  }
  return absl::InternalError(absl::StrCat(prefix, civetweb_error));
}

// The listening socket civetweb opened for `port`, found among this process's fds: a
// socket in the listening state bound to that port. Nothing else can be listening on
// it, since civetweb holds it. -1 if /proc is unavailable.
int FindListeningSocket(int family, std::uint16_t port) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  const int dir_fd = dirfd(dir);
  int found = -1;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    const int fd = std::atoi(entry->d_name);
    if (fd == dir_fd) continue;
    int listening = 0;
    socklen_t length = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) != 0 || !listening) continue;
    sockaddr_storage bound{};
    length = sizeof bound;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) != 0) continue;
    if (bound.ss_family != family) continue;
    const std::uint16_t bound_port =
        family == AF_INET6 ? ntohs(reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port)
                           : ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
    if (bound_port == port) {
      found = fd;
      break;
    }
  }
  closedir(dir);
  return found;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const HostPort& address,
                                                                    std::size_t threads) {
  absl::StatusOr<HostPort> numeric = ToNumeric(address);
  if (!numeric.ok()) return numeric.status();
  auto registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(numeric->ToString(), threads);
  } catch (const std::exception& e) {
    // civetweb throws CivetException for every bind failure.
    return ExplainBindFailure(*numeric, e.what());
  }
  const std::vector<int> ports = exposer->GetListeningPorts();
  if (ports.size() != 1 || ports[0] <= 0 || ports[0] > 65535) {
    return absl::InternalError(absl::StrCat("cannot serve /metrics on ", numeric->ToString(),
                                            ": the HTTP server reports ", ports.size(),
                                            " listening ports"));
  }
  exposer->RegisterCollectable(registry);
  HostPort bound = *numeric;
  bound.port = static_cast<std::uint16_t>(ports[0]);
  const int listen_fd =
      FindListeningSocket(bound.kind == HostPort::Kind::kIPv6 ? AF_INET6 : AF_INET, bound.port);
  return std::unique_ptr<MetricsServer>(
      new MetricsServer(std::move(registry), std::move(exposer), std::move(bound), listen_fd));
}

MetricsServer::MetricsServer(std::shared_ptr<prometheus::Registry> registry,
                             std::unique_ptr<prometheus::Exposer> exposer, HostPort address,
                             int listen_fd)
    : registry_(std::move(registry)),
      exposer_(std::move(exposer)),
      address_(std::move(address)),
      listen_fd_(listen_fd) {}

MetricsServer::~MetricsServer() {
  // civetweb 1.15's accept thread polls in 2-second quanta and mg_stop() does not wake
  // it, so stopping took up to 2 s. Shutting the listening socket down (civetweb still
  // owns and closes it) wakes the poll at once; the stop then takes milliseconds.
  if (listen_fd_ >= 0) shutdown(listen_fd_, SHUT_RDWR);
  exposer_.reset();  // joins the HTTP threads; the registry goes after
}

std::string MetricName(absl::string_view service, absl::string_view what, Unit unit) {
  const std::string name = absl::StrCat("cohort_", service, "_", what, UnitSuffix(unit));
  if (!IsSnakeCase(service)) BadMetricName(name, "the service must be snake_case");
  if (!IsSnakeCase(what)) BadMetricName(name, "<what> must be snake_case");
  for (absl::string_view suffix : {"_total", "_seconds", "_bytes"}) {
    if (absl::EndsWith(what, suffix)) {
      BadMetricName(name, "<what> must not end in a unit or _total: pass the Unit instead");
    }
  }
  if (!prometheus::CheckMetricName(name)) BadMetricName(name, "rejected by prometheus-cpp");
  return name;
}

ServiceMetrics::ServiceMetrics(prometheus::Registry& registry, std::string service)
    : registry_(registry), service_(std::move(service)) {
  if (!IsSnakeCase(service_)) BadMetricName(absl::StrCat("cohort_", service_), "the service must be snake_case");
}

prometheus::Family<prometheus::Counter>& ServiceMetrics::AddCounter(absl::string_view what,
                                                                    absl::string_view help,
                                                                    Unit unit) {
  return prometheus::BuildCounter()
      .Name(absl::StrCat(MetricName(service_, what, unit), "_total"))
      .Help(std::string(help))
      .Register(registry_);
}

prometheus::Family<prometheus::Gauge>& ServiceMetrics::AddGauge(absl::string_view what,
                                                                absl::string_view help, Unit unit) {
  return prometheus::BuildGauge()
      .Name(MetricName(service_, what, unit))
      .Help(std::string(help))
      .Register(registry_);
}

prometheus::Family<prometheus::Histogram>& ServiceMetrics::AddHistogram(absl::string_view what,
                                                                        absl::string_view help,
                                                                        Unit unit) {
  return prometheus::BuildHistogram()
      .Name(MetricName(service_, what, unit))
      .Help(std::string(help))
      .Register(registry_);
}

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* const kBuckets = new prometheus::Histogram::BucketBoundaries{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
  return *kBuckets;
}

const prometheus::Histogram::BucketBoundaries& RunDurationBuckets() {
  static const auto* const kBuckets = new prometheus::Histogram::BucketBoundaries{
      0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};
  return *kBuckets;
}

}  // namespace cohort::common
