#include "libs/common/ready_line.h"

#include <unistd.h>

#include <cstdio>
#include <string>

#include "gtest/gtest.h"

namespace cohort::common {
namespace {

const HostPort kGrpc{"127.0.0.1", 7070, HostPort::Kind::kIPv4};
const HostPort kMetrics{"::1", 9470, HostPort::Kind::kIPv6};

TEST(ReadyLine, HasTheExactFormatScriptsWaitFor) {
  EXPECT_EQ(ReadyLine(kGrpc, kMetrics), "listening grpc=127.0.0.1:7070 metrics=[::1]:9470");
}

TEST(PrintReadyLine, WritesOneFlushedLineToStdout) {
  // Point fd 1 at a pipe: the line must be in the pipe as soon as PrintReadyLine
  // returns, without anyone else flushing stdout.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::fflush(stdout);
  const int saved_stdout = dup(STDOUT_FILENO);
  ASSERT_GE(saved_stdout, 0);
  ASSERT_EQ(dup2(fds[1], STDOUT_FILENO), STDOUT_FILENO);
  close(fds[1]);

  const absl::Status status = PrintReadyLine(kGrpc, kMetrics);

  ASSERT_EQ(dup2(saved_stdout, STDOUT_FILENO), STDOUT_FILENO);
  close(saved_stdout);
  ASSERT_TRUE(status.ok()) << status;
  std::string got;
  char buffer[256];
  ssize_t n;
  while ((n = read(fds[0], buffer, sizeof buffer)) > 0) got.append(buffer, static_cast<std::size_t>(n));
  close(fds[0]);
  EXPECT_EQ(got, "listening grpc=127.0.0.1:7070 metrics=[::1]:9470\n");
}

TEST(WriteReadyLine, ReportsAFailedWrite) {
  std::FILE* read_only = std::fopen("/dev/null", "r");
  ASSERT_NE(read_only, nullptr);
  const absl::Status status = WriteReadyLine(read_only, kGrpc, kMetrics);
  std::fclose(read_only);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace cohort::common
