#include "tests/testing/service_process.h"

#include <signal.h>

#include <cerrno>
#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/runfiles.h"

namespace cohort::testing {
namespace {

using ::testing::HasSubstr;

std::string FakeService() { return BinaryPath("tests/testing/fake_service"); }

TEST(ServiceProcess, ParsesTheReadyLine) {
  auto process = ServiceProcess::Start(FakeService(), {});
  ASSERT_TRUE(process.ok()) << process.status();
  EXPECT_EQ((*process)->grpc_address(), "127.0.0.1:1234");
  EXPECT_EQ((*process)->metrics_address(), "127.0.0.1:5678");
  EXPECT_GT((*process)->pid(), 0);
  EXPECT_THAT((*process)->output(),
              ::testing::ElementsAre("listening grpc=127.0.0.1:1234 metrics=127.0.0.1:5678"));
}

TEST(ServiceProcess, ReportsTheExitCodeOfAProcessThatExitsBeforeReady) {
  auto process = ServiceProcess::Start(FakeService(), {"--fail-before-ready"});
  ASSERT_EQ(process.status().code(), absl::StatusCode::kUnavailable) << process.status();
  EXPECT_THAT(std::string(process.status().message()),
              HasSubstr("exited before printing the ready line"));
  EXPECT_THAT(std::string(process.status().message()), HasSubstr("exit code 3"));
}

TEST(ServiceProcess, KillsAProcessThatIsNotReadyInTime) {
  auto process = ServiceProcess::Start(FakeService(), {"--never-ready"}, absl::Milliseconds(200));
  ASSERT_EQ(process.status().code(), absl::StatusCode::kDeadlineExceeded) << process.status();
  EXPECT_THAT(std::string(process.status().message()), HasSubstr("SIGKILL"));
}

TEST(ServiceProcess, RejectsAMalformedReadyLineWithTheExitStatus) {
  auto process = ServiceProcess::Start(FakeService(), {"--malformed-ready"});
  ASSERT_EQ(process.status().code(), absl::StatusCode::kInternal) << process.status();
  EXPECT_THAT(std::string(process.status().message()), HasSubstr("listening grpc=nowhere"));
  EXPECT_THAT(std::string(process.status().message()), HasSubstr("killed by signal 9 (SIGKILL)"));
}

TEST(ServiceProcess, ReportsAMissingBinaryAsNotFound) {
  auto process = ServiceProcess::Start(FakeService() + "-missing", {});
  EXPECT_EQ(process.status().code(), absl::StatusCode::kNotFound) << process.status();
}

TEST(ServiceProcess, TerminateReturnsExitCodeZero) {
  auto process = ServiceProcess::Start(FakeService(), {});
  ASSERT_TRUE(process.ok()) << process.status();
  absl::StatusOr<int> exit = (*process)->Terminate(absl::Seconds(30));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(*exit, 0);
  // Reaped: asking again reports the same status without signalling anyone.
  EXPECT_EQ((*process)->Terminate(), absl::StatusOr<int>(0));
}

TEST(ServiceProcess, TerminateEscalatesToSigkillWhenTheGraceRunsOut) {
  auto process = ServiceProcess::Start(FakeService(), {"--ignore-term"});
  ASSERT_TRUE(process.ok()) << process.status();
  const absl::Duration grace = absl::Milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<int> exit = (*process)->Terminate(grace);
  const absl::Duration elapsed = absl::FromChrono(std::chrono::steady_clock::now() - start);
  EXPECT_EQ(exit.status().code(), absl::StatusCode::kAborted) << exit.status();
  EXPECT_THAT(std::string(exit.status().message()),
              HasSubstr("did not exit within 300ms of SIGTERM"));
  EXPECT_THAT(std::string(exit.status().message()), HasSubstr("killed by signal 9 (SIGKILL)"));
  EXPECT_GE(elapsed, grace);
  EXPECT_LT(elapsed, grace + absl::Seconds(10));
}

TEST(ServiceProcess, Kill9KillsAndReaps) {
  auto process = ServiceProcess::Start(FakeService(), {});
  ASSERT_TRUE(process.ok()) << process.status();
  const pid_t pid = (*process)->pid();
  EXPECT_TRUE((*process)->Kill9().ok());
  EXPECT_EQ(kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  absl::StatusOr<int> exit = (*process)->Wait();
  EXPECT_EQ(exit.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(exit.status().message()), HasSubstr("SIGKILL"));
}

TEST(ServiceProcess, Kill9ReportsAProcessThatHadAlreadyExited) {
  auto process = ServiceProcess::Start(FakeService(), {});
  ASSERT_TRUE(process.ok()) << process.status();
  ASSERT_EQ((*process)->Terminate(), absl::StatusOr<int>(0));
  absl::Status killed = (*process)->Kill9();
  EXPECT_EQ(killed.code(), absl::StatusCode::kFailedPrecondition) << killed;
  EXPECT_THAT(std::string(killed.message()), HasSubstr("exit code 0"));
}

TEST(ServiceProcess, WaitTimesOutWhileTheProcessRuns) {
  auto process = ServiceProcess::Start(FakeService(), {});
  ASSERT_TRUE(process.ok()) << process.status();
  EXPECT_EQ((*process)->Wait(absl::Milliseconds(50)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST(ServiceProcess, DestructorKillsAndReaps) {
  pid_t pid = 0;
  {
    auto process = ServiceProcess::Start(FakeService(), {"--ignore-term"});
    ASSERT_TRUE(process.ok()) << process.status();
    pid = (*process)->pid();
    ASSERT_EQ(kill(pid, 0), 0);
  }
  EXPECT_EQ(kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST(ServiceProcess, DrainsStdoutSoTheChildNeverBlocks) {
  // About 1 MB, far beyond a pipe's buffer: the child finishes only if it is drained.
  constexpr int kLines = 100000;
  auto process =
      ServiceProcess::Start(FakeService(), {absl::StrCat("--lines-after-ready=", kLines)});
  ASSERT_TRUE(process.ok()) << process.status();
  ASSERT_EQ((*process)->Terminate(absl::Seconds(30)), absl::StatusOr<int>(0));
  const std::vector<std::string> output = (*process)->output();
  ASSERT_EQ(output.size(), kLines + 1);
  EXPECT_EQ(output[1], "line 0");
  EXPECT_EQ(output.back(), absl::StrCat("line ", kLines - 1));
}

}  // namespace
}  // namespace cohort::testing
