#include "libs/common/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cohort::common {
namespace {

using ::testing::HasSubstr;

HostPort Loopback(std::uint16_t port) { return HostPort{"127.0.0.1", port, HostPort::Kind::kIPv4}; }

// GET `path` over a plain socket with HTTP/1.0 (the server closes the connection after
// the response); returns the whole response, or an error string starting with "error:".
// Reads are bounded by a generous receive timeout rather than by sleeping.
std::string HttpGet(const HostPort& address, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "error: socket";
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(address.port);
  inet_pton(AF_INET, address.host.c_str(), &sin.sin_addr);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&sin), sizeof sin) != 0) {
    close(fd);
    return "error: connect";
  }
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", address.ToString(), "\r\n\r\n");
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return "error: send";
  }
  std::string response;
  char buffer[4096];
  while (true) {
    const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n == 0) break;
    if (n < 0) {
      close(fd);
      return "error: recv timed out or failed";
    }
    response.append(buffer, static_cast<std::size_t>(n));
  }
  close(fd);
  return response;
}

TEST(MetricsServer, ServesARegisteredCounterOnAFreePort) {
  auto server = MetricsServer::Start(Loopback(0));
  ASSERT_TRUE(server.ok()) << server.status();
  const HostPort bound = (*server)->address();
  EXPECT_EQ(bound.host, "127.0.0.1");
  EXPECT_NE(bound.port, 0);

  ServiceMetrics metrics((*server)->registry(), "test");
  prometheus::Counter& jobs =
      metrics.AddCounter("jobs_submitted", "Jobs accepted.").Add({{"queue", "default"}});
  jobs.Increment();
  jobs.Increment(2);

  const std::string response = HttpGet(bound, "/metrics");
  EXPECT_THAT(response, HasSubstr("200 OK"));
  EXPECT_THAT(response, HasSubstr("# TYPE cohort_test_jobs_submitted_total counter\n"));
  EXPECT_THAT(response, HasSubstr("\ncohort_test_jobs_submitted_total{queue=\"default\"} 3\n"));
}

TEST(MetricsServer, SecondServerOnTheSamePortFailsWithAClearStatus) {
  auto first = MetricsServer::Start(Loopback(0));
  ASSERT_TRUE(first.ok()) << first.status();
  const HostPort taken = (*first)->address();

  auto second = MetricsServer::Start(taken);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(second.status().message(),
            absl::StrCat("cannot serve /metrics on ", taken.ToString(),
                         ": the address is already in use"));
  // The first server is unharmed.
  EXPECT_THAT(HttpGet(taken, "/metrics"), HasSubstr("200 OK"));
}

TEST(MetricsServer, FreesItsPortWhenDestroyed) {
  auto first = MetricsServer::Start(Loopback(0));
  ASSERT_TRUE(first.ok()) << first.status();
  const HostPort bound = (*first)->address();
  EXPECT_THAT(HttpGet(bound, "/metrics"), HasSubstr("200 OK"));
  first->reset();

  auto again = MetricsServer::Start(bound);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->address(), bound);
}

TEST(MetricsServer, RejectsAnAddressThatIsNotThisMachines) {
  // 192.0.2.0/24 is TEST-NET-1: never assigned to a real interface.
  auto server = MetricsServer::Start(HostPort{"192.0.2.1", 0, HostPort::Kind::kIPv4});
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(server.status().message(),
            "cannot serve /metrics on 192.0.2.1:0: the host is not an address of this machine");
}

TEST(MetricsServer, ResolvesAHostnameAndReportsTheNumericAddress) {
  auto server = MetricsServer::Start(HostPort{"localhost", 0, HostPort::Kind::kHostname});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->address().kind, HostPort::Kind::kIPv4);
  EXPECT_EQ((*server)->address().host, "127.0.0.1");
  EXPECT_THAT(HttpGet((*server)->address(), "/metrics"), HasSubstr("200 OK"));
}

TEST(MetricsServer, IPv6EitherServesOrSaysWhyNot) {
  // Debian's civetweb 1.15 is built without IPv6; a build with it must serve.
  auto server = MetricsServer::Start(HostPort{"::1", 0, HostPort::Kind::kIPv6});
  if (server.ok()) {
    EXPECT_NE((*server)->address().port, 0);
  } else {
    EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(server.status().message(), HasSubstr("IPv6"));
  }
}

TEST(MetricName, FollowsCohortsConvention) {
  EXPECT_EQ(MetricName("broker", "queue_depth"), "cohort_broker_queue_depth");
  EXPECT_EQ(MetricName("broker", "dispatch_latency", Unit::kSeconds),
            "cohort_broker_dispatch_latency_seconds");
  EXPECT_EQ(MetricName("executor", "output", Unit::kBytes), "cohort_executor_output_bytes");
}

TEST(ServiceMetrics, NamesCountersGaugesAndHistograms) {
  prometheus::Registry registry;
  ServiceMetrics metrics(registry, "broker");
  EXPECT_EQ(metrics.AddCounter("jobs_submitted", "h").GetName(), "cohort_broker_jobs_submitted_total");
  EXPECT_EQ(metrics.AddCounter("commit", "h", Unit::kBytes).GetName(), "cohort_broker_commit_bytes_total");
  EXPECT_EQ(metrics.AddGauge("queue_oldest_age", "h", Unit::kSeconds).GetName(),
            "cohort_broker_queue_oldest_age_seconds");
  auto& latency = metrics.AddHistogram("rpc_latency", "h", Unit::kSeconds);
  EXPECT_EQ(latency.GetName(), "cohort_broker_rpc_latency_seconds");
  latency.Add({{"method", "Submit"}}, LatencyBuckets()).Observe(0.0003);
  // Asking again returns the same family.
  EXPECT_EQ(&metrics.AddCounter("jobs_submitted", "h"), &metrics.AddCounter("jobs_submitted", "h"));
}

TEST(ServiceMetricsDeathTest, AbortsOnNamesThatBreakTheConvention) {
  prometheus::Registry registry;
  ServiceMetrics metrics(registry, "broker");
  EXPECT_DEATH(metrics.AddCounter("jobs_submitted_total", "h"), "must not end in a unit or _total");
  EXPECT_DEATH(metrics.AddHistogram("latency_seconds", "h", Unit::kSeconds), "must not end in a unit");
  EXPECT_DEATH(metrics.AddGauge("Queue-Depth", "h"), "must be snake_case");
  EXPECT_DEATH(ServiceMetrics(registry, "Broker"), "the service must be snake_case");
}

TEST(Buckets, AreStrictlyIncreasing) {
  for (const auto* buckets : {&LatencyBuckets(), &RunDurationBuckets()}) {
    ASSERT_FALSE(buckets->empty());
    for (std::size_t i = 1; i < buckets->size(); ++i) EXPECT_LT((*buckets)[i - 1], (*buckets)[i]);
  }
  EXPECT_EQ(LatencyBuckets().front(), 0.0001);
  EXPECT_EQ(LatencyBuckets().back(), 10);
}

}  // namespace
}  // namespace cohort::common
