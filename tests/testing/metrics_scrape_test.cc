#include "tests/testing/metrics_scrape.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace cohort::testing {
namespace {

constexpr char kBody[] =
    "# HELP cohort_broker_waiters Waiters.\n"
    "# TYPE cohort_broker_waiters gauge\n"
    "cohort_broker_waiters 3\n"
    "cohort_broker_jobs_submitted_total{queue=\"q\"} 7\n"
    "cohort_broker_jobs_submitted_total{queue=\"q2\"} 9\n"
    "cohort_broker_latency_seconds_bucket{queue=\"q\",le=\"+Inf\"} 4 1700000000000\n"
    "cohort_broker_odd{name=\"a \\\"b\\\" c\"} +Inf\n";

TEST(MetricValue, FindsABareSeries) { EXPECT_EQ(MetricValue(kBody, "cohort_broker_waiters"), 3.0); }

TEST(MetricValue, MatchesTheLabelSetExactly) {
  EXPECT_EQ(MetricValue(kBody, "cohort_broker_jobs_submitted_total{queue=\"q\"}"), 7.0);
  EXPECT_EQ(MetricValue(kBody, "cohort_broker_jobs_submitted_total{queue=\"q2\"}"), 9.0);
  EXPECT_EQ(MetricValue(kBody, "cohort_broker_jobs_submitted_total"), std::nullopt);
  EXPECT_EQ(MetricValue(kBody, "cohort_broker_jobs_submitted_total{queue=\"q3\"}"), std::nullopt);
  EXPECT_EQ(MetricValue(kBody, "cohort_broker_waiter"), std::nullopt);
}

TEST(MetricValue, AcceptsLabelsInAnyOrderAndIgnoresTimestamps) {
  EXPECT_EQ(MetricValue(kBody, "cohort_broker_latency_seconds_bucket{le=\"+Inf\",queue=\"q\"}"),
            4.0);
}

TEST(MetricValue, ParsesInfinityAndEscapedLabelValues) {
  const std::optional<double> value =
      MetricValue(kBody, "cohort_broker_odd{name=\"a \\\"b\\\" c\"}");
  ASSERT_TRUE(value.has_value());
  EXPECT_TRUE(std::isinf(*value));
}

// Serves one canned HTTP response on 127.0.0.1:<port()> to the first connection.
class OneShotHttpServer {
 public:
  explicit OneShotHttpServer(std::string response) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), size), 0);
    EXPECT_EQ(listen(listen_fd_, 1), 0);
    EXPECT_EQ(getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &size), 0);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this, response = std::move(response)] {
      const int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      std::string request;
      char buf[1024];
      while (request.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      request_ = request;
      EXPECT_EQ(write(fd, response.data(), response.size()), static_cast<ssize_t>(response.size()));
      close(fd);
    });
  }
  ~OneShotHttpServer() {
    thread_.join();
    close(listen_fd_);
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  // Valid once the scrape has returned.
  const std::string& request() const { return request_; }

 private:
  int listen_fd_ = -1;
  int port_ = 0;
  std::string request_;
  std::thread thread_;
};

TEST(ScrapeMetrics, ReturnsTheBodyOfA200) {
  OneShotHttpServer server(absl::StrCat(
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ", sizeof kBody - 1,
      "\r\n\r\n", kBody));
  absl::StatusOr<std::string> body = ScrapeMetrics(server.address());
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, kBody);
  EXPECT_EQ(server.request().rfind("GET /metrics HTTP/1.0\r\n", 0), 0u) << server.request();
}

TEST(ScrapeMetrics, DecodesAChunkedBody) {
  OneShotHttpServer server(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "b\r\ncohort_x 1\n\r\n"
      "b\r\ncohort_y 2\n\r\n0\r\n\r\n");
  absl::StatusOr<std::string> body = ScrapeMetrics(server.address());
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, "cohort_x 1\ncohort_y 2\n");
}

TEST(ScrapeMetrics, ReportsANon200AsUnavailable) {
  OneShotHttpServer server("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  absl::StatusOr<std::string> body = ScrapeMetrics(server.address());
  EXPECT_EQ(body.status().code(), absl::StatusCode::kUnavailable) << body.status();
}

TEST(ScrapeMetrics, ReportsARefusedConnectionAsUnavailable) {
  // A bound socket that never listens: connecting to it is refused.
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), size), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size), 0);
  absl::StatusOr<std::string> body =
      ScrapeMetrics(absl::StrCat("127.0.0.1:", ntohs(address.sin_port)));
  close(fd);
  EXPECT_EQ(body.status().code(), absl::StatusCode::kUnavailable) << body.status();
}

TEST(ScrapeMetrics, RejectsAnAddressWithoutAPort) {
  EXPECT_EQ(ScrapeMetrics("127.0.0.1").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cohort::testing
